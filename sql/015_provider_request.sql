-- 015_provider_request.sql - jobs waiting on a remote model (the replicate
-- provider with IMAGEGEN_PUBLIC_URL set).
--
-- An executor creates the prediction with a webhook, records its id here
-- (the job stays `generating`, waiting = true) and exits: no process waits
-- on the model.  POST /api/webhooks/nano-banana, or the sweeper's poll when
-- the webhook is late, writes the terminal prediction into outcome; an
-- executor then resumes the job (waiting = false) to download and store the
-- image.  One row per job (its latest attempt); the job row's shape, a
-- contract, is unchanged.
--
-- image_provider_webhooks records each webhook-id received once, so a
-- webhook sent again (Replicate retries, a replay) changes nothing.  An
-- ended request's webhook that finds no job yet (it came before the
-- executor recorded the id) keeps the outcome there, and recording the id
-- takes it.
-- Service data only: RLS on, no policies, granted to service_role.

CREATE TABLE public.image_provider_requests (
	job_id       uuid PRIMARY KEY
	             REFERENCES public.image_generation_jobs (id) ON DELETE CASCADE,
	provider     text NOT NULL,
	request_id   text NOT NULL,
	attempt      integer NOT NULL,
	waiting      boolean NOT NULL DEFAULT true,
	submitted_at timestamptz NOT NULL DEFAULT now(),
	poll_at      timestamptz NOT NULL,
	polls        integer NOT NULL DEFAULT 0,
	outcome      jsonb,
	outcome_from text CHECK (outcome_from IN ('webhook', 'poll')),
	outcome_at   timestamptz,
	UNIQUE (provider, request_id)
);
CREATE INDEX image_provider_requests_waiting
	ON public.image_provider_requests (poll_at) WHERE waiting;

CREATE TABLE public.image_provider_webhooks (
	webhook_id  text PRIMARY KEY,
	provider    text NOT NULL,
	request_id  text,
	job_id      uuid,
	outcome     jsonb,
	received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX image_provider_webhooks_request
	ON public.image_provider_webhooks (provider, request_id);

REVOKE ALL ON TABLE public.image_provider_requests, public.image_provider_webhooks
	FROM PUBLIC, anon, authenticated, service_role;
GRANT ALL ON TABLE public.image_provider_requests, public.image_provider_webhooks
	TO service_role;
ALTER TABLE public.image_provider_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.image_provider_webhooks ENABLE ROW LEVEL SECURITY;
