-- The schema of the first release (commit caeb522) on postgresql, then two columns as a later version's
-- JobStore.create_schema added them (nullable, without an index), frozen: tests/test_migrations.py
-- adopts it.

CREATE TABLE jobs (
	id VARCHAR(36) NOT NULL,
	startup VARCHAR(800) NOT NULL,
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
	worker VARCHAR(200),
	PRIMARY KEY (id)
);

CREATE INDEX ix_jobs_state ON jobs (state);

CREATE INDEX ix_jobs_created_at ON jobs (created_at);

CREATE TABLE job_steps (
	job_id VARCHAR(36) NOT NULL,
	key VARCHAR(40) NOT NULL,
	text TEXT NOT NULL,
	provider VARCHAR(100) NOT NULL,
	model VARCHAR(200) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (job_id, key),
	FOREIGN KEY(job_id) REFERENCES jobs (id) ON DELETE CASCADE
);

ALTER TABLE jobs ADD COLUMN "startup_key" VARCHAR(800);

ALTER TABLE jobs ADD COLUMN "created_by" VARCHAR(64);
