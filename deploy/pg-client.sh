#!/usr/bin/env bash
# [PG_MAJOR=N] pg-client.sh DEST: PostgreSQL N's pg_dump and pg_restore (default 15, Debian 12's)
# with their shared-library closure, laid out as a tree to put over the project image's
# distroless cc-debian12 root.
#
# The operator dumps a realm's database before every DROP, restores spec.database.restoreFrom
# and runs the scheduled backups with these two programs, from its own image. Used by both:
#   - the Dockerfile's `pgclient` stage (debian:bookworm-slim + the PostgreSQL project's
#     postgresql-client-17 for Debian 12, so the image dumps servers up to 17), whose DEST is
#     COPYed over the runtime stage's root;
#   - tests/checks/k8s-node.sh (the host: Debian 12 with its own postgresql 15, the version the
#     node's server runs), which adds DEST to the node's image as a layer.
#
# DEST/usr/local/bin/{pg_dump,pg_restore}: the real binaries of postgresql-client-N
# (/usr/lib/postgresql/N/bin, not Debian's perl wrapper /usr/bin/pg_dump, which needs perl and
# postgresql-common); on the image's PATH, where the operator's PEK_PG_DUMP / PEK_PG_RESTORE
# defaults find them.
# DEST/usr/lib/x86_64-linux-gnu/...: every library they load (ldd), at its canonical (merged
# /usr) path under its SONAME, except what distroless cc already has: the libraries of the
# packages in BASE below (glibc, libssl3's libssl/libcrypto, libgcc, libstdc++, libgomp), whose
# copies in the image are the ones it keeps up to date. The dynamic loader searches
# /usr/lib/<multiarch> whether or not /lib is a symlink to it.
# DEST/usr/share/doc/<package>/copyright: the licences of the packages the files come from.
#
# Needs bash, ldd, dpkg (Debian). Fails if a library is missing or owned by no package.
set -euo pipefail
DEST=${1:?usage: pg-client.sh DEST}
# DEST becomes the image's root directory: it and every directory under it must be 0755.
umask 022
PG_MAJOR=${PG_MAJOR:-15}
case $PG_MAJOR in ''|*[!0-9]*) echo "pg-client.sh: PG_MAJOR must be a major version number, not '$PG_MAJOR'" >&2; exit 1 ;; esac
PGBIN=/usr/lib/postgresql/$PG_MAJOR/bin
PROGRAMS=(pg_dump pg_restore)
# Debian packages whose files the distroless cc-debian12 image already carries.
BASE=" libc6 libssl3 libgcc-s1 libstdc++6 libgomp1 "

mkdir -p "$DEST/usr/local/bin"
chmod 0755 "$DEST"
declare -A PKGS=([postgresql-client-$PG_MAJOR]=1)
for prog in "${PROGRAMS[@]}"; do
  [ -x "$PGBIN/$prog" ] || { echo "pg-client.sh: no $PGBIN/$prog (apt-get install postgresql-client-$PG_MAJOR)" >&2; exit 1; }
  install -m 0755 "$PGBIN/$prog" "$DEST/usr/local/bin/$prog"
done
# ldd prints "soname => /path (addr)" per library and "not found" for a missing one.
libs=$(for prog in "${PROGRAMS[@]}"; do ldd "$PGBIN/$prog"; done)
if grep -q 'not found' <<<"$libs"; then
  echo "pg-client.sh: missing libraries: $(grep 'not found' <<<"$libs" | tr -s ' \t\n' ' ')" >&2
  exit 1
fi
LIBS=$(awk '$2 == "=>" && $3 ~ /^\// {print $3}' <<<"$libs" | sort -u)
# The Debian package of each library, from one dpkg query (dpkg records /lib and /usr/lib paths
# as packaged, so both spellings of a merged-/usr path are asked; the unknown one is ignored).
declare -A OWNER
while IFS= read -r line; do
  pkg=${line%%: *}; path=${line#*: }
  OWNER[$path]=${pkg%%:*}
done < <(for lib in $LIBS; do echo "$lib"; case $lib in /usr/lib/*) echo "${lib#/usr}" ;; /lib/*) echo "/usr$lib" ;; esac; done \
  | xargs dpkg -S 2>/dev/null || true)
for lib in $LIBS; do
  alt=$lib; case $lib in /usr/lib/*) alt=${lib#/usr} ;; /lib/*) alt=/usr$lib ;; esac
  pkg=${OWNER[$lib]:-${OWNER[$alt]:-}}
  [ -n "$pkg" ] || { echo "pg-client.sh: $lib belongs to no Debian package" >&2; exit 1; }
  case $BASE in *" $pkg "*) continue ;; esac
  PKGS[$pkg]=1
  dir=$(realpath "$(dirname "$lib")")
  mkdir -p "$DEST$dir"
  cp -L "$lib" "$DEST$dir/$(basename "$lib")"
  chmod 0644 "$DEST$dir/$(basename "$lib")"
done
for pkg in "${!PKGS[@]}"; do
  if [ -f "/usr/share/doc/$pkg/copyright" ]; then
    mkdir -p "$DEST/usr/share/doc/$pkg"
    cp "/usr/share/doc/$pkg/copyright" "$DEST/usr/share/doc/$pkg/copyright"
  fi
done
echo "pg-client.sh: ${PROGRAMS[*]} ($("$PGBIN/pg_dump" --version)) + $(find "$DEST" -name '*.so*' | wc -l) libraries from ${#PKGS[@]} packages into $DEST" >&2
