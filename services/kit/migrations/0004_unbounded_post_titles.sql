-- Post titles as text. The API limits a title to 120 characters as sent, but what is stored is the cleaned
-- title, whose `&`, `<` and `>` the cleaner escapes (`&amp;`, `&lt;`, `&gt;`): a valid title could be up to
-- 600 characters and overflowed varchar(200) (a 500 instead of a stored post). The input limit stays in
-- the API. PostgreSQL does not change the type of a column a generated column reads, so the search
-- column (0002) and its index are dropped and made again, unchanged, around the change.
alter table posts drop column if exists search;
alter table posts alter column title type text;
alter table posts add column search tsvector
  generated always as (to_tsvector('simple', coalesce(title, '') || ' ' || coalesce(content, ''))) stored;
create index idx_posts_search on posts using gin (search);
