#!/bin/sh
# dhclient's hook, minimal: set the leased address and default route on the interface,
# and touch nothing else (no resolv.conf: the namespace shares the host's /etc).
case "$reason" in
  BOUND|RENEW|REBIND|REBOOT)
    ip -4 addr flush dev "$interface"
    ip -4 addr add "$new_ip_address/$new_subnet_mask" dev "$interface"
    ip link set "$interface" up
    [ -n "$new_routers" ] && ip -4 route replace default via "${new_routers%% *}" dev "$interface"
    ;;
  PREINIT)
    ip link set "$interface" up
    ;;
esac
exit 0
