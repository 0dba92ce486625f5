// imageService.d.ts - types of imageService.js (imagegen's browser/Node client).

export type JobStatus =
  | 'queued' | 'processing' | 'generating' | 'uploading'
  | 'completed' | 'failed' | 'canceled';
export type JobType = 'master_asset' | 'start_frame' | 'end_frame' | 'inpaint';

/** A job as GET /api/images/jobs/{jobId} answers it. */
export interface Job {
  jobId: string;
  status: JobStatus;
  jobType?: JobType;
  projectId?: string;
  branchId?: string;
  assetId?: string | null;
  sceneId?: string | null;
  shotId?: string | null;
  visualStyleCapsuleId?: string | null;
  prompt?: string;
  finalPrompt?: string | null;
  width?: number;
  height?: number;
  provider?: string | null;
  model?: string | null;
  publicUrl?: string | null;
  storagePath?: string | null;
  mimeType?: string | null;
  cost?: { estimated: number | null; actual: number | null; currency: string };
  attempts?: number;
  retryOf?: string | null;
  cancelRequested?: boolean;
  createdAt?: string;
  startedAt?: string | null;
  completedAt?: string | null;
  updatedAt?: string;
  error?: { code: string; message: string; failureStage: string | null };
}

/** One row of a job's history (GET /api/images/jobs/{jobId}/events). */
export interface JobEvent {
  id: number;
  event: 'status' | 'style_capsule_applied' | string;
  fromStatus: string | null;
  toStatus: string | null;
  detail: Record<string, unknown> | null;
  createdAt: string;
}

/** A project of the caller with its branches (GET /api/projects). */
export interface Project {
  id: string;
  name: string;
  createdAt: string;
  branches: { id: string; name: string; isMain: boolean }[];
}

/** What onAudit receives for each style capsule a job applied. */
export interface AuditRecord {
  type: 'style_capsule_applied';
  jobId: string;
  capsuleId: string | null;
  name: string | null;
  shared: boolean | null;
  styleText: string | null;
  createdAt: string;
  event: JobEvent;
}

export interface SupabaseLike {
  auth: { getSession(): Promise<{ data: { session: { access_token: string } | null } }> };
}

export interface ImageServiceOptions {
  /** Origin (and path prefix) of the API; '' (default) = same origin. */
  baseUrl?: string;
  /** The bearer token of each request. */
  getAccessToken?: () => string | null | undefined | Promise<string | null | undefined>;
  /** A supabase-js client: its session's access_token is used first. */
  supabase?: SupabaseLike;
  /** Use globalThis.supabase as that client when it is one (default imageService: true). */
  useGlobalSupabase?: boolean;
  /** Time between two status polls (default 1000). */
  pollIntervalMs?: number;
  /** Longest wait for a job to end (default 60000). */
  timeoutMs?: number;
  /** Longest wait for one HTTP answer (default 30000). */
  requestTimeoutMs?: number;
  /** Network retries of one call (default 3). */
  retries?: number;
  /** Cap of the back-off between polls (default 30000). */
  maxBackoffMs?: number;
  /** The fetch to use (default globalThis.fetch). */
  fetch?: typeof fetch;
  /** Receives the applied style capsules (default console.info). */
  onAudit?: (rec: AuditRecord) => void;
}

export interface WaitOptions {
  /** Aborts the wait (rejects with code ABORTED). */
  signal?: AbortSignal;
  /** An abort also cancels the job; one during the create waits for its answer, then cancels that job. */
  cancelOnAbort?: boolean;
  /** Called with each new state of the job. */
  onUpdate?: (job: Job) => void;
  timeoutMs?: number;
  pollIntervalMs?: number;
}

export interface CallOptions extends WaitOptions {
  /** Default: crypto.randomUUID(), reused on the call's retries. */
  idempotencyKey?: string;
  /** Send `Prefer: wait=N` (seconds) with the create. */
  preferWait?: number;
}

export interface SizeOptions {
  branchId?: string;
  width?: number;
  height?: number;
  webhook?: string;
  webhookEventsFilter?: ('start' | 'completed')[];
}

export interface GenerateResult {
  jobId: string;
  imageUrl: string;
  job: Job;
}

export interface GenerateBody extends SizeOptions {
  projectId: string;
  jobType: JobType;
  prompt: string;
  visualStyleCapsuleId?: string;
  assetId?: string;
  sceneId?: string;
  shotId?: string;
  sourceImageUrl?: string;
  maskImageUrl?: string;
  idempotencyKey?: string;
}

export interface ImageService {
  /** The guide's call: a master asset of prompt (main branch unless opts.branchId). */
  generateAssetImageKey(
    projectId: string,
    prompt: string,
    visualStyleCapsuleId?: string | null,
    opts?: CallOptions & SizeOptions & { assetId?: string },
  ): Promise<GenerateResult>;
  /** A start or end frame of a shot. */
  generateFrame(
    params: SizeOptions & {
      projectId: string; sceneId: string; shotId: string; prompt: string;
      frame?: 'start' | 'end'; visualStyleCapsuleId?: string;
    },
    opts?: CallOptions,
  ): Promise<GenerateResult>;
  /** Inpaints an image of this service's bucket. */
  inpaint(
    params: SizeOptions & {
      projectId: string; prompt: string; sourceImageUrl: string; maskImageUrl?: string;
      assetId?: string; visualStyleCapsuleId?: string;
    },
    opts?: CallOptions,
  ): Promise<GenerateResult>;
  /** createJob + waitForJob (+ the audit of the style capsule). */
  generate(body: GenerateBody, opts?: CallOptions): Promise<GenerateResult>;
  /** POST /api/images/generate with an Idempotency-Key. */
  createJob(body: GenerateBody, opts?: CallOptions): Promise<Job & { idempotencyKey: string; replayed: boolean }>;
  getJob(jobId: string, opts?: { signal?: AbortSignal }): Promise<Job>;
  /** Polls until the job ends; rejects with TIMEOUT, ABORTED, CANCELED or the job's error code. */
  waitForJob(jobId: string, opts?: WaitOptions): Promise<Job>;
  cancelJob(jobId: string, opts?: { signal?: AbortSignal }): Promise<Job>;
  retryJob(jobId: string, opts?: { signal?: AbortSignal }): Promise<{ jobId: string; status: JobStatus }>;
  listJobs(params?: {
    projectId?: string; status?: JobStatus; limit?: number; cursor?: string; signal?: AbortSignal;
  }): Promise<{ jobs: Job[]; nextCursor: string | null }>;
  listProjects(opts?: { signal?: AbortSignal }): Promise<Project[]>;
  getJobEvents(jobId: string, opts?: { signal?: AbortSignal }): Promise<JobEvent[]>;
  /** Changes this service's options for the calls that follow. */
  configure(options: ImageServiceOptions): ImageService;
}

/**
 * The one error type: API codes, or JOB_FAILED (the job's own code in
 * jobErrorCode), TIMEOUT, ABORTED, CANCELED, NETWORK_ERROR, BAD_RESPONSE.
 */
export class ImageServiceError extends Error {
  constructor(init: {
    code: string; message: string; failureStage?: string | null; jobErrorCode?: string | null; status?: number;
    jobId?: string | null; job?: Job | null; retryAfterMs?: number | null; cause?: unknown;
  });
  name: 'ImageServiceError';
  code: string;
  failureStage: string | null;
  /** With code JOB_FAILED: the failed job's error.code (e.g. CONTENT_POLICY, or a provider's TIMEOUT). */
  jobErrorCode: string | null;
  /** HTTP status, 0 when none. */
  status: number;
  jobId: string | null;
  job: Job | null;
  retryAfterMs: number | null;
}

/** Retry-After (seconds or HTTP-date) in milliseconds, or null. */
export function parseRetryAfter(value: string | null | undefined, now?: number): number | null;

export function createImageService(options?: ImageServiceOptions): ImageService;

/** Same origin; token from globalThis.supabase's session, else configure({ getAccessToken }). */
export const imageService: ImageService;
export default imageService;
