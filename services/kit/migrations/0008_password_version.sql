-- A counter of each account's password changes (user-service PATCH /users/me adds one; a rehash of the same
-- password does not). The credential check answers the value it checked the password against, and the
-- auth-service opens a session only if it is still the account's value under the user's sessions lock: a
-- login whose check passed with the old password while a password change committed does not outlive it.
alter table users add column if not exists password_version integer not null default 0;
