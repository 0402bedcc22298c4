"""The built-in library of vendors: one YAML file per vendor in `vendors/`,
loaded and validated once at start-up."""
