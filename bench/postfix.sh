# Sourced by the benchmarks (bench/deliverer/run.sh, bench/protection/run.sh): a private Postfix instance that relays
# everything for bench.test to 127.0.0.1:$2. The caller provides WORK, POSTFIX_DIRS, freeport and wait_port.
#
#   start_bench_postfix NAME NEXT_HOP_PORT [MAIN_CF_LINES]   # sets PF_PORT; MAIN_CF_LINES are added to main.cf
start_bench_postfix() {
  local dir="$WORK/$1"; PF_PORT=$(freeport)
  mkdir -p "$dir/conf" "$dir/queue" "$dir/data"
  chown postfix "$dir/data"
  cat > "$dir/conf/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
myhostname = bench-$1.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = bench.test
relayhost = [127.0.0.1]:$2
smtpd_recipient_restrictions = permit_mynetworks, reject
alias_maps =
alias_database =
local_recipient_maps =
smtp_tls_security_level = none
smtpd_tls_security_level = none
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
CF
  if [ -n "${3:-}" ]; then printf '%s\n' "$3" >> "$dir/conf/main.cf"; fi
  # The distribution's master.cf with the SMTP listener moved to our port and no chroot (a private instance).
  awk -v port="$PF_PORT" '
    /^smtp[ \t]+inet/ { print "127.0.0.1:" port " inet n - n - - smtpd"; next }
    /^[a-z]/ && NF >= 8 { $5 = "n" }
    { print }' /usr/share/postfix/master.cf.dist > "$dir/conf/master.cf"
  postfix -c "$dir/conf" start >/dev/null 2>"$dir/start.err" || { cat "$dir/start.err" "$dir/maillog" >&2 2>/dev/null; exit 1; }
  POSTFIX_DIRS+=("$dir")
  wait_port "$PF_PORT"
}
