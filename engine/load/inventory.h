/* inventory: hosts and groups from an inventory file in Ansible's INI
 * format, so that the inventories a team already keeps work as they are.
 *
 *   local inv = inventory("inventories/prod.ini")  -- relative to the runbook
 *   step "isolate" { each = inv:hosts("web"), action = ssh.run { ... } }
 *
 * Understood: hosts before any section (group "ungrouped"), [group],
 * [group:vars], [group:children], host lines "name key=value ...", values
 * in quotes, numeric and letter ranges (www[01:03], db-[a:c]), comments
 * (# and ;). Every host is in "all". A host's variables: the vars of every
 * group it belongs to, in the order the [group:vars] sections appear, then
 * its own line (which wins).
 *
 * inv:hosts(PATTERN) is the list of host tables for a pattern of group or
 * host names joined by ':' or ',' ("all", "web", "web:db"), in file order,
 * each host once: { name, host (ansible_host, else name), port
 * (ansible_port), user (ansible_user), key (ansible_ssh_private_key_file),
 * vars = {...}, groups = {...} }. inv.groups maps each group to its host
 * names. Reading the file has no side effect, so plan and check use it
 * too; an error names the file and line. */
#ifndef BH_INVENTORY_H
#define BH_INVENTORY_H

#include <lua.h>

#include "load/model.h"

/* Define the global inventory() in the runbook environment at env. */
void bh_inventory_install(lua_State *L, bh_runbook *rb, int env);

#endif
