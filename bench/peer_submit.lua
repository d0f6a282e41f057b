-- wrk script: submit django-helpdesk's public ticket form again and again (bench/peer.py).
-- Django's CSRF token is bound to the csrftoken cookie, so one cookie + token pair (fetched by
-- peer.py beforehand, as a browser would) serves every request.
local path = os.getenv("BENCH_PATH")
local cookie = os.getenv("BENCH_COOKIE")
local token = os.getenv("BENCH_CSRF")
local queue = os.getenv("BENCH_QUEUE")
local counter = 0

local headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Cookie"] = cookie,
}

request = function()
  counter = counter + 1
  -- A new submitter each time, as in bench/submit.lua.
  local body = "queue=" .. queue
    .. "&submitter_email=bench" .. counter .. "-" .. math.random(1000000000) .. "%40example.com"
    .. "&title=Benchmark+ticket+" .. counter
    .. "&body=My+payment+page+does+not+load+after+I+sign+in.+Please+help."
    .. "&priority=3"
    .. "&due_date="
    .. "&csrfmiddlewaretoken=" .. token
  return wrk.format("POST", path, headers, body)
end

init = function(args)
  -- Each wrk thread has its own Lua state: seed each differently.
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end
