#!/bin/sh
# Entrypoint of the Asterisk image: gives the ARI user of ari.conf the
# password of the Docker secret ari_password, then runs the command
# (Asterisk) in its place.
#
# ari.conf sets `password = change-me`, then `#tryinclude "ari-password.conf"`;
# in the image /etc/asterisk/ari-password.conf is a link to the file this
# script writes, whose `password = ...` line comes later and wins. Without
# the secret the file is not written and ari.conf's own password applies (as
# when the integration suite starts the image).
#
# The password is read as ari-transfer reads ARI_PASSWORD_FILE: the whole
# file, less one trailing newline. It must be one line, with no leading or
# trailing blanks (Asterisk would trim them) and no backslash; a `;` (a
# comment in Asterisk's files) is escaped.
#
#   ARI_PASSWORD_FILE  the secret (default /run/secrets/ari_password)
#   ARI_PASSWORD_CONF  the file written (default /var/run/asterisk/ari-password.conf)
set -eu

secret="${ARI_PASSWORD_FILE:-/run/secrets/ari_password}"
conf="${ARI_PASSWORD_CONF:-/var/run/asterisk/ari-password.conf}"

fail() {
  echo "asterisk-entrypoint: $secret: $1" >&2
  exit 1
}

# Never a password left from an earlier start of this container.
rm -f "$conf"

if [ -e "$secret" ]; then
  [ -r "$secret" ] || fail "not readable by user $(id -un) (uid $(id -u)); the secret file must be readable by the containers' users (mode 644 on the host, in a directory only you can enter)"
  # $(...) drops every trailing newline: keep them, then drop exactly one
  # (with a CR before it), as ari-transfer does.
  password="$(cat "$secret"; printf x)"
  password="${password%x}"
  nl='
'
  cr="$(printf '\r')"
  case "$password" in
    *"$nl") password="${password%"$nl"}" && password="${password%"$cr"}" ;;
  esac
  case "$password" in
    '') fail 'is empty' ;;
    *[[:cntrl:]]*) fail 'must hold one line (the password) and nothing else' ;;
    [[:space:]]* | *[[:space:]]) fail 'the password must not begin or end with a blank' ;;
    *\\*) fail 'the password must not contain a backslash' ;;
  esac
  escaped="$(printf '%s' "$password" | sed 's/;/\\;/g')"
  (
    umask 077
    printf '; Written by the image entrypoint from %s at start; do not edit.\npassword_format = plain\npassword = %s\n' "$secret" "$escaped" > "$conf"
  )
  echo "asterisk-entrypoint: the ARI password is the one of $secret"
else
  echo "asterisk-entrypoint: no $secret: the ARI password is ari.conf's own" >&2
fi

exec "$@"
