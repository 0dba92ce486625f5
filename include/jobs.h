/* jobs.h - the job modules' headers in one include: the request
 * (jobreq.h), its persistence (jobsdb.h) and its JSON (job_json.h).
 * New code includes the one it uses. */
#ifndef IG_JOBS_H
#define IG_JOBS_H

#include "jobreq.h"
#include "jobsdb.h"
#include "job_json.h"

#endif
