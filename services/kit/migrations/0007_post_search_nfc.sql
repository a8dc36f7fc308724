-- Full-text search over the NFC form of title and content (blog-service `src/repo.ts`). Text written in
-- another Unicode form, such as Korean in decomposed jamo (NFD, as macOS file names are), was indexed as
-- other lexemes than the same words typed in NFC, so a search never found it; the API normalises `q` to NFC
-- too. Stored text stays as sent. The generated column cannot change its expression in place: it is dropped
-- (its index with it) and made again, as in 0004.
alter table posts drop column if exists search;
alter table posts add column search tsvector
  generated always as (to_tsvector('simple', normalize(coalesce(title, '') || ' ' || coalesce(content, ''), NFC))) stored;
create index idx_posts_search on posts using gin (search);
