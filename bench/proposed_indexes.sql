-- Indexes proposed by the benchmark for the filter combinations that miss the 50 ms target
-- (see bench/README.md, "Findings"). Apply to the BENCH database only, re-run run_bench.py
-- (e.g. --filters model+api_key+status,api_key+status,model+status), compare, then drop:
--   psql "$DATABASE_URL" -f bench/proposed_indexes.sql
--   psql "$DATABASE_URL" -c "DROP INDEX reqlog_err_time, reqlog_err_model_time, reqlog_err_key_time, reqlog_acct_key_model_time"
SET maintenance_work_mem = '512MB';

-- Errors are ~5% of rows: partial indexes on them are small and serve status=error alone
-- and combined with model and/or API key, in keyset order, without reading success rows.
CREATE INDEX IF NOT EXISTS reqlog_err_time ON logs_requestlog (account_id, "timestamp" DESC, id DESC)
    WHERE status = 'error';
CREATE INDEX IF NOT EXISTS reqlog_err_model_time ON logs_requestlog (account_id, model, "timestamp" DESC, id DESC)
    WHERE status = 'error';
CREATE INDEX IF NOT EXISTS reqlog_err_key_time ON logs_requestlog (account_id, api_key, "timestamp" DESC, id DESC)
    WHERE status = 'error';

-- "Filter by API key" is the main use; narrowing it by model is the next click.
CREATE INDEX IF NOT EXISTS reqlog_acct_key_model_time
    ON logs_requestlog (account_id, api_key, model, "timestamp" DESC, id DESC);

ANALYZE logs_requestlog;
