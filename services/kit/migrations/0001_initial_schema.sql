-- The original schema (users, categories, posts) in the shared database `titanium`.
create table if not exists users (
  id serial primary key,
  username varchar(100) not null,
  email varchar(255) not null,
  password_hash varchar(255) not null,
  created_at timestamptz not null default now()
);
-- Case-insensitive uniqueness: "Alice" and "alice" are one account.
create unique index if not exists users_username_lower_key on users (lower(username));

create table if not exists categories (
  id serial primary key,
  name varchar(50) not null unique,
  slug varchar(50) not null unique,
  color varchar(7) not null default '#6B7280',
  -- Seeded categories survive the empty-category clean-up (the original deleted them).
  seeded boolean not null default false
);

create table if not exists posts (
  id serial primary key,
  title varchar(200) not null,
  content text not null,
  author varchar(100) not null,
  category_id integer not null references categories (id),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index if not exists idx_posts_author on posts (author);
create index if not exists idx_posts_created_at on posts (created_at desc);
create index if not exists idx_posts_category_id on posts (category_id);

insert into categories (id, name, slug, color, seeded) values
  (1, '기술 스택', 'tech-stack', '#3B82F6', true),
  (2, 'Troubleshooting', 'troubleshooting', '#E9754A', true),
  (3, 'Test', 'test', '#757575', true)
on conflict (id) do nothing;
select setval('categories_id_seq', greatest((select max(id) from categories), 1));
