-- The schema that JobStore.create_schema made on PostgreSQL just before the move to Alembic
-- (Base.metadata.create_all of commit 0ed3cb3), frozen: tests/test_migrations.py adopts it.

CREATE TABLE jobs (
	id VARCHAR(36) NOT NULL,
	startup VARCHAR(800) NOT NULL,
	startup_key VARCHAR(800) NOT NULL,
	state VARCHAR(16) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	started_at TIMESTAMP WITH TIME ZONE,
	finished_at TIMESTAMP WITH TIME ZONE,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	progress_step INTEGER NOT NULL,
	progress_total INTEGER NOT NULL,
	progress_label VARCHAR(100) NOT NULL,
	attempts INTEGER NOT NULL,
	retry_at TIMESTAMP WITH TIME ZONE,
	error TEXT,
	report_md TEXT,
	provider VARCHAR(200),
	calls INTEGER NOT NULL,
	retries INTEGER NOT NULL,
	input_tokens INTEGER NOT NULL,
	output_tokens INTEGER NOT NULL,
	cost_usd FLOAT NOT NULL,
	unpriced_calls INTEGER NOT NULL,
	calls_sent INTEGER,
	worker VARCHAR(200),
	created_by VARCHAR(64),
	cancelled_by VARCHAR(64),
	idempotency_key VARCHAR(200),
	deliveries INTEGER NOT NULL,
	retried_as VARCHAR(36),
	providers_down VARCHAR(200),
	website VARCHAR(2000),
	notes TEXT,
	citations_removed INTEGER,
	PRIMARY KEY (id)
);

CREATE INDEX ix_jobs_created_by ON jobs (created_by);

CREATE INDEX ix_jobs_startup_key ON jobs (startup_key);

CREATE INDEX ix_jobs_created_at ON jobs (created_at);

CREATE INDEX ix_jobs_idempotency_key ON jobs (idempotency_key);

CREATE INDEX ix_jobs_state ON jobs (state);

CREATE TABLE users (
	id SERIAL NOT NULL,
	username VARCHAR(64) NOT NULL,
	password_hash VARCHAR(300) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (username)
);

CREATE TABLE job_steps (
	job_id VARCHAR(36) NOT NULL,
	key VARCHAR(40) NOT NULL,
	text TEXT NOT NULL,
	provider VARCHAR(100) NOT NULL,
	model VARCHAR(200) NOT NULL,
	input_tokens INTEGER NOT NULL,
	output_tokens INTEGER NOT NULL,
	cost_usd FLOAT,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	citations_removed INTEGER,
	paid BOOLEAN,
	PRIMARY KEY (job_id, key),
	FOREIGN KEY(job_id) REFERENCES jobs (id) ON DELETE CASCADE
);

CREATE TABLE job_documents (
	id SERIAL NOT NULL,
	job_id VARCHAR(36) NOT NULL,
	filename VARCHAR(255) NOT NULL,
	text TEXT NOT NULL,
	PRIMARY KEY (id),
	FOREIGN KEY(job_id) REFERENCES jobs (id) ON DELETE CASCADE
);

CREATE INDEX ix_job_documents_job_id ON job_documents (job_id);

CREATE TABLE job_research (
	job_id VARCHAR(36) NOT NULL,
	data TEXT NOT NULL,
	PRIMARY KEY (job_id),
	FOREIGN KEY(job_id) REFERENCES jobs (id) ON DELETE CASCADE
);

CREATE TABLE task_deliveries (
	job_id VARCHAR(36) NOT NULL,
	task_key VARCHAR(40) NOT NULL,
	count INTEGER NOT NULL,
	PRIMARY KEY (job_id, task_key),
	FOREIGN KEY(job_id) REFERENCES jobs (id) ON DELETE CASCADE
);

CREATE TABLE api_tokens (
	id SERIAL NOT NULL,
	user_id INTEGER NOT NULL,
	name VARCHAR(100) NOT NULL,
	token_hash VARCHAR(64) NOT NULL,
	hint VARCHAR(16) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	last_used_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (id),
	FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE,
	UNIQUE (token_hash)
);

CREATE INDEX ix_api_tokens_user_id ON api_tokens (user_id);
