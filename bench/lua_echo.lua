-- lua_echo.lua -- the mod_lua peer of the benchmarks: a WebSocket echo
-- that runs inside the httpd worker thread (r:wsupgrade), no script
-- process.  mod_lua drops frames of 64 KiB and more, so bench/run does not
-- give it the 1 MiB workload.
function handle(r)
    if not r:wsupgrade() then
        return 400
    end
    while true do
        local msg = r:wsread()
        if msg == nil then
            break
        end
        r:wswrite(msg)
    end
    r:wsclose()
    return apache2.OK
end
