# cyrdeck reach (READ-ONLY): does this host reach a sync_server? Prints its
# "* OK" banner line (capability lines "* SASL ..." come first), exit 0;
# exit 1 when refused, filtered or silent.
#   bash -c <this> HOST PORT   (HOST arrives as $0; bounded by the exec timeout)
exec 3<>"/dev/tcp/$0/$1" || exit 1
n=0
while [ $n -lt 5 ] && IFS= read -r -t 3 l <&3; do
  case $l in
    "* OK"*) printf '%s\n' "$l"; exit 0 ;;
  esac
  n=$((n + 1))
done
exit 1
