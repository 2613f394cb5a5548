-- Revoking a session revokes its refresh tokens: find them without a scan.
CREATE INDEX refresh_by_session ON refresh_tokens (session_id);
