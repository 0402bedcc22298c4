"""The REST face under `/v1/admin`: one router per documented section, the
error envelope, list envelopes and the request middleware."""

API_PREFIX = "/v1/admin"
