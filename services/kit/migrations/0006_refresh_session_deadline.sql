-- A session (one refresh-token family) ends at a fixed deadline however often it is refreshed: a
-- stolen refresh token kept rotating cannot live forever. The default serves rows an older
-- auth-service writes during a rolling update (30 days: REFRESH_SESSION_MAX_SECONDS's default; a
-- rotation takes the family's earliest deadline, so such a row never extends a session); sessions
-- already open get 30 days from now.
alter table refresh_tokens add column if not exists session_expires_at timestamptz not null default now() + interval '30 days';
