-- Refresh tokens: only a SHA-256 of each token is stored. Tokens of one login share a family; using a
-- rotated token again revokes the whole family (theft detection).
create table if not exists refresh_tokens (
  id bigserial primary key,
  token_hash bytea not null unique,
  family_id uuid not null,
  user_id integer not null,
  username varchar(100) not null,
  issued_at timestamptz not null default now(),
  expires_at timestamptz not null,
  rotated_at timestamptz,
  revoked_at timestamptz
);
create index if not exists idx_refresh_tokens_family on refresh_tokens (family_id);
create index if not exists idx_refresh_tokens_expires on refresh_tokens (expires_at);
