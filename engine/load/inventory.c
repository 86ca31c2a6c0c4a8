#include "load/inventory.h"

#include <errno.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

/* The parser: Lua is the clearer language for text and tables. Compiled by
 * the host; it gets the file's text and name, nothing else. */
static const char PARSER[] =
    "local text, file, lenient = ...\n"
    "local function fail(n, msg) error(('%s:%d: %s'):format(file, n, msg), 0) end\n"
    "local order, hosts, groups, gorder, gvars, children = {}, {}, {}, {}, {}, {}\n"
    "local function group(g)\n"
    "  if not groups[g] then groups[g] = {}; gorder[#gorder + 1] = g end\n"
    "  return groups[g]\n"
    "end\n"
    "group('all'); group('ungrouped')\n"
    "local function expand(name, n)\n"
    "  local pre, a, b, post = name:match('^(.-)%[([%w]+):([%w]+)%](.*)$')\n"
    "  if not pre then return { name } end\n"
    "  local out = {}\n"
    "  if a:match('^%d+$') and b:match('^%d+$') then\n"
    "    local width = (#a > 1 and a:sub(1, 1) == '0') and #a or 0\n"
    "    if tonumber(a) > tonumber(b) then fail(n, 'range ' .. a .. ':' .. b .. ' runs backwards') "
    "end\n"
    "    if tonumber(b) - tonumber(a) > 10000 then fail(n, 'range too large') end\n"
    "    for i = tonumber(a), tonumber(b) do\n"
    "      for _, rest in ipairs(expand(post, n)) do\n"
    "        out[#out + 1] = pre .. ('%0' .. width .. 'd'):format(i) .. rest end end\n"
    "  elseif #a == 1 and #b == 1 and a:match('%a') and b:match('%a') then\n"
    "    for c = a:byte(), b:byte() do\n"
    "      for _, rest in ipairs(expand(post, n)) do out[#out + 1] = pre .. string.char(c) .. rest "
    "end end\n"
    "  else fail(n, 'range [' .. a .. ':' .. b .. '] is neither numbers nor single letters') end\n"
    "  return out\n"
    "end\n"
    "local function pairs_of(rest, n)\n"
    "  local vars = {}\n"
    "  rest = rest or ''\n"
    "  while true do\n"
    "    rest = rest:gsub('^%s+', '')\n"
    "    if rest == '' or rest:sub(1, 1) == '#' then break end\n"
    "    local k, v, after = rest:match('^([%w_%.%-]+)=\"([^\"]*)\"(.*)$')\n"
    "    if not k then k, v, after = rest:match(\"^([%w_%.%-]+)='([^']*)'(.*)$\") end\n"
    "    if not k then k, v, after = rest:match('^([%w_%.%-]+)=(%S*)(.*)$') end\n"
    "    if not k then fail(n, 'expected key=value, found \"' .. rest .. '\"') end\n"
    "    vars[k] = v; rest = after\n"
    "  end\n"
    "  return vars\n"
    "end\n"
    "local section, kind = 'ungrouped', 'hosts'\n"
    "local n = 0\n"
    "for line in (text .. '\\n'):gmatch('([^\\n]*)\\n') do\n"
    "  n = n + 1\n"
    "  line = line:gsub('\\r$', ''):gsub('^%s+', ''):gsub('%s+$', '')\n"
    "  if line == '' or line:match('^[#;]') then\n"
    "  elseif line:match('^%[') then\n"
    "    local g, k = line:match('^%[([%w_%.%-]+):?([%w]*)%]$')\n"
    "    if not g then fail(n, 'a section is [group], [group:vars] or [group:children]') end\n"
    "    if k ~= '' and k ~= 'vars' and k ~= 'children' then fail(n, 'unknown section kind :' .. "
    "k) end\n"
    "    section, kind = g, (k == '' and 'hosts' or k)\n"
    "    group(g)\n"
    "    if kind == 'vars' then gvars[#gvars + 1] = { group = g, vars = {} } end\n"
    "  elseif kind == 'vars' then\n"
    "    local k, v = line:match('^([%w_%.%-]+)%s*=%s*(.-)$')\n"
    "    if not k then fail(n, 'expected key=value in [' .. section .. ':vars]') end\n"
    "    v = v:match('^\"(.*)\"$') or v:match(\"^'(.*)'$\") or v\n"
    "    gvars[#gvars].vars[k] = v\n"
    "  elseif kind == 'children' then\n"
    "    if not line:match('^[%w_%.%-]+$') then fail(n, 'expected a group name in [' .. section .. "
    "':children]') end\n"
    "    group(line)\n"
    "    children[section] = children[section] or {}\n"
    "    table.insert(children[section], line)\n"
    "  else\n"
    "    local name, rest = line:match('^(%S+)%s*(.*)$')\n"
    "    local vars = pairs_of(rest, n)\n"
    "    for _, h in ipairs(expand(name, n)) do\n"
    "      if not h:match('^[%w_%.%-:]+$') then fail(n, 'not a host name: ' .. h) end\n"
    "      if not hosts[h] then hosts[h] = { name = h, vars = {}, groups = {} }; order[#order + 1] "
    "= h end\n"
    "      for k, v in pairs(vars) do hosts[h].lineVars = hosts[h].lineVars or {}; "
    "hosts[h].lineVars[k] = v end\n"
    "      local members = group(section)\n"
    "      local dup = false\n"
    "      for _, m in ipairs(members) do if m == h then dup = true end end\n"
    "      if not dup then members[#members + 1] = h end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "-- a group's hosts include its children's, recursively (cycles refused)\n"
    "local function members_of(g, seen)\n"
    "  if seen[g] then error(('%s: groups %s contain each other'):format(file, g), 0) end\n"
    "  seen[g] = true\n"
    "  local out, have = {}, {}\n"
    "  for _, h in ipairs(groups[g] or {}) do if not have[h] then have[h] = true; out[#out + 1] = "
    "h end end\n"
    "  for _, c in ipairs(children[g] or {}) do\n"
    "    for _, h in ipairs(members_of(c, seen)) do if not have[h] then have[h] = true; out[#out + "
    "1] = h end end\n"
    "  end\n"
    "  seen[g] = nil\n"
    "  return out\n"
    "end\n"
    "for _, g in ipairs(gorder) do groups[g] = members_of(g, {}) end\n"
    "groups.all = {}\n"
    "for _, h in ipairs(order) do table.insert(groups.all, h) end\n"
    "local ungrouped = {}\n"
    "for _, h in ipairs(order) do\n"
    "  local in_any = false\n"
    "  for _, g in ipairs(gorder) do\n"
    "    if g ~= 'all' and g ~= 'ungrouped' then\n"
    "      for _, m in ipairs(groups[g]) do if m == h then in_any = true end end end end\n"
    "  if not in_any then ungrouped[#ungrouped + 1] = h end\n"
    "end\n"
    "groups.ungrouped = ungrouped\n"
    "for _, h in ipairs(order) do\n"
    "  local host = hosts[h]\n"
    "  for _, g in ipairs(gorder) do\n"
    "    for _, m in ipairs(groups[g]) do if m == h then host.groups[#host.groups + 1] = g end end "
    "end\n"
    "  for _, gv in ipairs(gvars) do\n"
    "    for _, m in ipairs(groups[gv.group] or {}) do\n"
    "      if m == h then for k, v in pairs(gv.vars) do host.vars[k] = v end end end end\n"
    "  for k, v in pairs(host.lineVars or {}) do host.vars[k] = v end\n"
    "  host.lineVars = nil\n"
    "  -- credentials stay in the file: a host table is recorded with each\n"
    "  -- attempt it is the item of (use keys, or secret())\n"
    "  for k in pairs(host.vars) do\n"
    "    local l = k:lower()\n"
    "    if l:find('pass') or l:find('secret') or l:find('token') or l:find('vault') then\n"
    "      host.vars[k] = '[redacted]' end end\n"
    "  local v = host.vars -- the current names, then the older ansible_ssh_ ones\n"
    "  host.host = v.ansible_host or v.ansible_ssh_host or h\n"
    "  host.port = tonumber(v.ansible_port or v.ansible_ssh_port)\n"
    "  host.user = v.ansible_user or v.ansible_ssh_user\n"
    "  host.key = v.ansible_ssh_private_key_file or v.ansible_private_key_file\n"
    "end\n"
    "local inv = { file = file, groups = groups, host = hosts }\n"
    "function inv.hosts(self, pattern)\n"
    "  if type(self) ~= 'table' or type(pattern) ~= 'string' then\n"
    "    error('use inv:hosts(\"group\") (with a colon)', 2) end\n"
    "  local want, out = {}, {}\n"
    "  for tok in pattern:gmatch('[^:,%s]+') do\n"
    "    if groups[tok] then for _, h in ipairs(groups[tok]) do want[h] = true end\n"
    "    elseif hosts[tok] then want[tok] = true\n"
    "    elseif not lenient then error(('%s has no group or host %q'):format(file, tok), 2) end\n"
    "  end\n"
    "  for _, h in ipairs(order) do if want[h] then out[#out + 1] = hosts[h] end end\n"
    "  return out\n"
    "end\n"
    "return inv\n";

/* Push the file's text (lightuserdata 1, length 2) as a Lua string: called
 * protected, so that running out of Lua memory cannot leak the C copy. */
static int push_text(lua_State *L) {
    lua_pushlstring(L, lua_touserdata(L, 1), (size_t)lua_tointeger(L, 2));
    return 1;
}

/* inventory(path): path is relative to the runbook's folder. Upvalue: rb. */
static int l_inventory(lua_State *L) {
    bh_runbook *rb = lua_touserdata(L, lua_upvalueindex(1));
    const char *path = luaL_checkstring(L, 1);
    /* the full path on the stack of C, so that nothing on the heap is held
     * when Lua raises (out of memory included) */
    char full[4096];
    const char *slash = path[0] == '/' ? NULL : strrchr(rb->path, '/');
    int n = slash ? snprintf(full, sizeof full, "%.*s/%s", (int)(slash - rb->path), rb->path, path)
                  : snprintf(full, sizeof full, "%s", path);
    if (n < 0 || (size_t)n >= sizeof full) return luaL_error(L, "inventory: path too long");
    size_t plen = strlen(path);
    int standin = rb->placeholders && path[0] == '<' && plen > 2 && path[plen - 1] == '>';
    size_t len = 0;
    char *text = standin ? NULL : bh_util_read_file(full, &len);
    if (!text && !standin)
        return luaL_error(L, "inventory: cannot read %s: %s", full, strerror(errno));
    if (luaL_loadbufferx(L, PARSER, sizeof PARSER - 1, "=bulkhead inventory", "t") != LUA_OK) {
        free(text);
        return lua_error(L);
    }
    if (standin) {
        /* `check` without parameter values: the path is a stand-in like
         * "<inventory>"; an empty inventory lets the rest be checked. */
        lua_pushliteral(L, "");
    } else {
        lua_pushcfunction(L, push_text);
        lua_pushlightuserdata(L, text);
        lua_pushinteger(L, (lua_Integer)len);
        int st = lua_pcall(L, 2, 1, 0);
        free(text);
        if (st != LUA_OK) return lua_error(L);
    }
    lua_pushstring(L, full);
    lua_pushboolean(L, standin);
    lua_call(L, 3, 1);
    return 1;
}

void bh_inventory_install(lua_State *L, bh_runbook *rb, int env) {
    env = lua_absindex(L, env);
    lua_pushlightuserdata(L, rb);
    lua_pushcclosure(L, l_inventory, 1);
    lua_setfield(L, env, "inventory");
}
