-- Full-text search over title and content. The `simple` configuration splits on whitespace and
-- punctuation without language stemming, which works for Korean and English alike.
alter table posts add column if not exists search tsvector
  generated always as (to_tsvector('simple', coalesce(title, '') || ' ' || coalesce(content, ''))) stored;
create index if not exists idx_posts_search on posts using gin (search);
