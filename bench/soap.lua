-- wrk script for every case of bench/bench.py: POSTs a SOAP 1.1 request and checks each answer.
--
--   wrk ... -s bench/soap.lua URL -- EXPECT BODY_FILE SOAPACTION [IDS_FILE]
--
-- EXPECT      text a good answer's body must contain (e.g. <tns:valid>true</tns:valid>)
-- BODY_FILE   the request body; with IDS_FILE, every "{ID}" in it is replaced by a session ID
-- SOAPACTION  the SOAPAction header value ("" for none)
-- IDS_FILE    one session ID per line: each request takes the next one (per thread, wrapping)
--
-- An answer that is not HTTP 200, or whose body lacks EXPECT, is counted as an error; done()
-- prints the counts and the latency figures on one line starting with BENCHRESULT, and the first
-- bad answer on a line starting with BENCHSAMPLE, for bench.py to read. A benchmark of faults is
-- worthless, so bench.py fails the case when any error was counted.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("tid", #threads)
end

local function read_file(path)
   local f = assert(io.open(path, "rb"))
   local s = f:read("*a")
   f:close()
   return s
end

local function replace_plain(s, what, with)
   local out, from = {}, 1
   while true do
      local i, j = s:find(what, from, true)
      if not i then break end
      table.insert(out, s:sub(from, i - 1))
      table.insert(out, with)
      from = j + 1
   end
   table.insert(out, s:sub(from))
   return table.concat(out)
end

local requests_list
local next_index = 1

function init(args)
   expect = args[1]
   local template = read_file(args[2])
   local headers = { ["Content-Type"] = "text/xml; charset=utf-8" }
   if args[3] and args[3] ~= "" then
      headers["SOAPAction"] = args[3]
   end
   requests_list = {}
   if args[4] and args[4] ~= "" then
      for id in io.lines(args[4]) do
         if id ~= "" then
            local body = replace_plain(template, "{ID}", id)
            table.insert(requests_list, wrk.format("POST", wrk.path, headers, body))
         end
      end
      assert(#requests_list > 0, "no IDs in " .. args[4])
      -- Threads start at different places in the list.
      math.randomseed(tid * 7919)
      next_index = math.random(#requests_list)
   else
      table.insert(requests_list, wrk.format("POST", wrk.path, headers, template))
   end
   ok, bad_status, bad_body = 0, 0, 0
   sample = ""
end

function request()
   local r = requests_list[next_index]
   next_index = next_index + 1
   if next_index > #requests_list then
      next_index = 1
   end
   return r
end

function response(status, headers, body)
   if status ~= 200 then
      bad_status = bad_status + 1
   elseif not body or not body:find(expect, 1, true) then
      bad_body = bad_body + 1
   else
      ok = ok + 1
      return
   end
   if sample == "" then
      sample = "status=" .. status .. " body=" .. (body or ""):sub(1, 400):gsub("[\r\n]", " ")
   end
end

function done(summary, latency, requests)
   local n_ok, n_status, n_body, first = 0, 0, 0, ""
   for _, t in ipairs(threads) do
      n_ok = n_ok + (t:get("ok") or 0)
      n_status = n_status + (t:get("bad_status") or 0)
      n_body = n_body + (t:get("bad_body") or 0)
      local s = t:get("sample") or ""
      if first == "" then first = s end
   end
   local e = summary.errors
   io.write(string.format(
      "BENCHRESULT requests=%d duration_us=%d ok=%d bad_status=%d bad_body=%d " ..
      "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d " ..
      "p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d mean_us=%.1f\n",
      summary.requests, summary.duration, n_ok, n_status, n_body,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max, latency.mean))
   if first ~= "" then
      io.write("BENCHSAMPLE " .. first .. "\n")
   end
end
