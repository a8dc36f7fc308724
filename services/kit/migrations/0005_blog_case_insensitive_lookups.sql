-- The blog's case-insensitive look-ups (blog-service `src/repo.ts`), each served by an index on the
-- expression it compares:
-- * `GET /blog/api/posts?author=` matches the author's username case-insensitively, as logins and profiles
--   match usernames (`lower(username)`), instead of scanning every post. The exact-match index goes: no query
--   compares `posts.author` as stored any more (a delete or change is found by the post's id).
-- * A post's `category_name` files it under an existing category whose name differs only in case.
drop index if exists idx_posts_author;
create index if not exists idx_posts_author_lower on posts (lower(author));
create index if not exists idx_categories_name_lower on categories (lower(name));
