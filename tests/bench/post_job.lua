-- post_job.lua - wrk script of tests/bench/bench_jobs:
-- POST /api/images/generate with a JSON body and a bearer token, both
-- from the environment:
--     IG_BODY='{"projectId":...}' IG_TOKEN=eyJ... \
--         wrk -t2 -c32 -d10s --latency -s post_job.lua http://127.0.0.1:PORT/api/images/generate
-- Every answer must be 202; done() prints "Non-202 responses: N" (wrk's own
-- "Non-2xx or 3xx responses" would let a 200 replay or a 3xx through).

local body = os.getenv("IG_BODY")
local token = os.getenv("IG_TOKEN")
if body == nil or token == nil then
    error("post_job.lua: set IG_BODY and IG_TOKEN")
end

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    non202 = 0
end

function response(status, headers, resp_body)
    if status ~= 202 then
        non202 = non202 + 1
    end
end

function done(summary, latency, requests)
    local n = 0
    for _, t in ipairs(threads) do
        n = n + (t:get("non202") or 0)
    end
    io.write(string.format("Non-202 responses: %d\n", n))
end
