-- What PostGraphile needs to serve the service's own tables with the same
-- selection as the service's pipeline graph query. Applied to the benchmark
-- database only, after the service's migrations; the service never reads it.

-- The creator of a revision is a plain column in the service, not a foreign
-- key, so PostGraphile is told of the relation with a smart comment.
comment on table integration_revisions is
  E'@foreignKey (created_by) references users (id)';

-- `latestRevision` and `upgradeAvailable` of an attachment, as computed columns.
create or replace function pipeline_integrations_latest_revision(
  attachment pipeline_integrations
) returns integration_revisions as $$
  select r.*
  from integration_revisions r
  where r.template_id = attachment.template_id
  order by r.revision_number desc
  limit 1
$$ language sql stable;

create or replace function pipeline_integrations_upgrade_available(
  attachment pipeline_integrations
) returns boolean as $$
  select pinned.revision_number < (
    select max(r.revision_number)
    from integration_revisions r
    where r.template_id = attachment.template_id
  )
  from integration_revisions pinned
  where pinned.id = attachment.revision_id
$$ language sql stable;
