"""Numbered schema migrations of the harvest DuckDB file (append only; never edit one).

``Store`` applies, in one transaction each, every migration a file has not had yet, and
refuses a file whose newest migration this code does not know. A stage that needs a table
(batch jobs, curated sets) adds it here as the next number, with its own ``CREATE``
statements; the ``answers`` row itself is :class:`stillroom.harvest._completions.CompletionRow`, and
the ``answers`` table and the ``completions`` view must keep exactly that row's columns
(``tests/harvest/test_harvest_completions.py`` checks it).
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY,
            started_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP,
            status VARCHAR NOT NULL,           -- running | finished | stopped | failed
            stopped_reason VARCHAR,            -- daily_cap | spend_cap | provider_wait | auth | interrupted
            message VARCHAR,
            base_url VARCHAR,
            requested_model VARCHAR,
            prompts_source VARCHAR,
            policy_id VARCHAR,
            policy_hash VARCHAR,
            policy JSON,
            config JSON,
            planned INTEGER,
            requests BIGINT DEFAULT 0,
            completed INTEGER DEFAULT 0,
            failed INTEGER DEFAULT 0,
            rate_limited INTEGER DEFAULT 0,
            prompt_tokens BIGINT DEFAULT 0,
            completion_tokens BIGINT DEFAULT 0,
            elapsed_s DOUBLE,
            learned_limits JSON,
            pid INTEGER
        );
        CREATE TABLE tasks (
            idempotency_key VARCHAR PRIMARY KEY,
            prompt_id VARCHAR NOT NULL,
            sample_index INTEGER NOT NULL,
            run_id VARCHAR,
            added_at TIMESTAMP
        );
        CREATE TABLE answers (
            idempotency_key VARCHAR PRIMARY KEY,
            prompt_id VARCHAR NOT NULL,
            sample_index INTEGER NOT NULL,
            messages JSON,
            system_prompt VARCHAR,
            content VARCHAR,
            reasoning VARCHAR,
            top_logprobs JSON,
            finish_reason VARCHAR,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            reasoning_tokens INTEGER,
            teacher_model VARCHAR,
            requested_model VARCHAR,
            policy_id VARCHAR,
            policy_hash VARCHAR,
            created_at TIMESTAMP,
            request_params JSON,
            request_id VARCHAR,
            latency_ms DOUBLE,
            run_id VARCHAR,
            attempts INTEGER
        );
        CREATE TABLE failures (
            idempotency_key VARCHAR PRIMARY KEY,
            prompt_id VARCHAR NOT NULL,
            sample_index INTEGER NOT NULL,
            messages JSON,
            request_params JSON,
            reason VARCHAR,
            status INTEGER,
            attempts INTEGER,
            policy_id VARCHAR,
            policy_hash VARCHAR,
            run_id VARCHAR,
            failed_at TIMESTAMP
        );
        CREATE TABLE daily_requests (
            day DATE PRIMARY KEY,
            requests BIGINT NOT NULL
        );
        CREATE VIEW completions AS
        SELECT prompt_id, sample_index, messages, system_prompt, content, reasoning,
               top_logprobs, finish_reason, prompt_tokens, completion_tokens, reasoning_tokens,
               teacher_model, requested_model, policy_id, policy_hash, created_at,
               request_params, idempotency_key, request_id, latency_ms, run_id
        FROM answers;
        """,
    ),
    (
        2,
        """
        -- the view gains `attempts`, so it has every column of CompletionRow
        CREATE OR REPLACE VIEW completions AS
        SELECT prompt_id, sample_index, messages, system_prompt, content, reasoning,
               top_logprobs, finish_reason, prompt_tokens, completion_tokens, reasoning_tokens,
               teacher_model, requested_model, policy_id, policy_hash, created_at,
               request_params, idempotency_key, request_id, latency_ms, run_id, attempts
        FROM answers;
        """,
    ),
    (
        3,
        # Batch API state (stillroom.harvest._batch_store): one row per input file of work (its id is
        # the sha256 of its JSONL and how many files with that sha256 came before), and
        # which idempotency keys each file holds; the run record's estimated (worst case,
        # reserved before submission) and actual spend.
        """
        CREATE TABLE batch_files (
            file_key VARCHAR PRIMARY KEY,
            sha256 VARCHAR NOT NULL,
            run_id VARCHAR NOT NULL,          -- the run that prepared it (batch metadata)
            mode VARCHAR NOT NULL,            -- batch | batch-file
            requests INTEGER NOT NULL,
            bytes BIGINT NOT NULL,
            state VARCHAR NOT NULL,           -- prepared | uploaded | creating | submitted | written | ingested | abandoned
            input_file_id VARCHAR,
            batch_id VARCHAR,
            batch_status VARCHAR,             -- the provider's: validating ... completed | expired ...
            output_file_id VARCHAR,
            error_file_id VARCHAR,
            request_counts JSON,
            metadata JSON,                    -- sent with the create (the intent)
            est_usd DOUBLE,                   -- worst case at batch prices
            spent_usd DOUBLE,
            path VARCHAR,                     -- batch-file: where the JSONL was written
            message VARCHAR,
            created_at TIMESTAMP NOT NULL,
            updated_at TIMESTAMP NOT NULL
        );
        CREATE TABLE batch_items (
            idempotency_key VARCHAR NOT NULL,
            file_key VARCHAR NOT NULL,
            PRIMARY KEY (idempotency_key, file_key)
        );
        ALTER TABLE runs ADD COLUMN mode VARCHAR;
        ALTER TABLE runs ADD COLUMN est_spend_usd DOUBLE;
        ALTER TABLE runs ADD COLUMN spend_usd DOUBLE;
        """,
    ),
    (
        4,
        """
        -- curate (curate/_store.py): named curated sets, a keep/drop decision per answer,
        -- and each verdict once per verifier, so a resumed curation does not verify again
        CREATE TABLE curations (
            name VARCHAR PRIMARY KEY,
            status VARCHAR NOT NULL,
            started_at TIMESTAMP,
            finished_at TIMESTAMP,
            config VARCHAR,
            benchmarks VARCHAR,
            store_rows BIGINT,
            store_fingerprint VARCHAR,
            summary VARCHAR
        );
        CREATE TABLE curation_decisions (
            curation VARCHAR NOT NULL,
            idempotency_key VARCHAR NOT NULL,
            keep BOOLEAN NOT NULL,
            stage VARCHAR,
            reason VARCHAR,
            matched VARCHAR,
            score DOUBLE,
            PRIMARY KEY (curation, idempotency_key)
        );
        CREATE TABLE curation_verdicts (
            idempotency_key VARCHAR NOT NULL,
            verifier VARCHAR NOT NULL,
            version VARCHAR NOT NULL,
            options_hash VARCHAR NOT NULL,
            reference_hash VARCHAR NOT NULL,
            passed BOOLEAN NOT NULL,
            reason VARCHAR,
            extracted VARCHAR,
            created_at TIMESTAMP,
            PRIMARY KEY (idempotency_key, verifier, version, options_hash, reference_hash)
        );
        CREATE TABLE curation_prompts (
            curation VARCHAR NOT NULL,
            prompt_key VARCHAR NOT NULL,
            samples INTEGER NOT NULL,
            passed INTEGER NOT NULL,
            pass_rate DOUBLE NOT NULL,
            pass_at VARCHAR,
            PRIMARY KEY (curation, prompt_key)
        );
        """,
    ),
    (
        5,
        # API dialects (stillroom.harvest._dialect): what kind of reasoning a row holds, the
        # provider's raw reasoning blocks (opaque JSON), cached input tokens and the finish
        # reason normalised; older rows get the kind and the finish their columns imply.
        """
        ALTER TABLE answers ADD COLUMN reasoning_kind VARCHAR;
        ALTER TABLE answers ADD COLUMN reasoning_blocks JSON;
        ALTER TABLE answers ADD COLUMN cached_input_tokens INTEGER;
        ALTER TABLE answers ADD COLUMN finish VARCHAR;
        UPDATE answers SET
            reasoning_kind = CASE WHEN reasoning IS NULL OR reasoning = '' THEN 'none'
                                  ELSE 'full' END,
            finish = CASE WHEN finish_reason IS NULL THEN NULL
                          WHEN finish_reason IN ('stop', 'length') THEN finish_reason
                          WHEN finish_reason = 'content_filter' THEN 'refusal'
                          ELSE 'other' END;
        ALTER TABLE runs ADD COLUMN api VARCHAR;
        CREATE OR REPLACE VIEW completions AS
        SELECT prompt_id, sample_index, messages, system_prompt, content, reasoning,
               top_logprobs, finish_reason, prompt_tokens, completion_tokens, reasoning_tokens,
               teacher_model, requested_model, policy_id, policy_hash, created_at,
               request_params, idempotency_key, request_id, latency_ms, run_id, attempts,
               reasoning_kind, reasoning_blocks, cached_input_tokens, finish
        FROM answers;
        """,
    ),
    (
        6,
        # Anthropic Message Batches (stillroom.harvest._batch_anthropic): the custom_id each key
        # was sent under (OpenAI batch lines use the key itself).
        """
        ALTER TABLE batch_items ADD COLUMN custom_id VARCHAR;
        UPDATE batch_items SET custom_id = idempotency_key;
        """,
    ),
    (
        7,
        """
        -- curate at scale (curate/_store_scale.py): the chunks of a curation that are done, so
        -- a curation killed half way redoes only the chunks it had not recorded
        CREATE TABLE curation_chunks (
            curation VARCHAR NOT NULL,
            stage VARCHAR NOT NULL,
            chunk INTEGER NOT NULL,
            first_row BIGINT NOT NULL,
            rows INTEGER NOT NULL,
            done_at TIMESTAMP,
            PRIMARY KEY (curation, stage, chunk)
        );
        """,
    ),
]

FAILURE_COLUMNS = (
    "idempotency_key",
    "prompt_id",
    "sample_index",
    "messages",
    "request_params",
    "reason",
    "status",
    "attempts",
    "policy_id",
    "policy_hash",
    "run_id",
    "failed_at",
)
