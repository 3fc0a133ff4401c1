#!/usr/bin/env bash
# Builds a minimal Node base image from this machine's own files, for `docker build --build-arg
# BASE_IMAGE=…` where no base image can be pulled (no container registry is reachable here).
#
#   scripts/local-base-image.sh TAG [--label KEY=VALUE]...
#
# It lays out what node:20-bookworm-slim offers the Dockerfile: node in /usr/local/bin, npm in
# /usr/local/lib/node_modules, a POSIX shell and coreutils (busybox, static), the shared libraries node
# links against (read with ldd), a root and a node user, and this machine's CA bundle (npm reaches the
# registry here through a TLS-intercepting egress proxy, whose CA only that bundle carries). Nothing is
# downloaded. Labels passed here are inherited by every image built FROM it, so a test can find and
# remove all it built by one label.
set -euo pipefail

tag="${1:?usage: local-base-image.sh TAG [--label KEY=VALUE]...}"
shift
changes=()
while [ $# -gt 0 ]; do
  case "$1" in
    --label) changes+=(--change "LABEL $2"); shift 2 ;;
    *) echo "local-base-image: unknown argument $1" >&2; exit 2 ;;
  esac
done

node_bin="$(readlink -f "$(command -v node)")"
npm_dir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
[ -x /bin/busybox ] || { echo "local-base-image: needs busybox-static (/bin/busybox)" >&2; exit 1; }
[ -f "$npm_dir/package.json" ] || { echo "local-base-image: npm not found next to node" >&2; exit 1; }

root="$(mktemp -d "${TMPDIR:-/tmp}/termgate-base.XXXXXX")"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,usr/local/lib/node_modules,usr/local/etc,etc/ssl/certs,root,tmp,proc,sys,dev,home/node}
chmod 1777 "$root/tmp"

# The shell and the usual commands: one static busybox, an applet link for each of its commands.
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list-full); do
  [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done

# node and the libraries it links against, at the paths the dynamic loader looks in.
cp "$node_bin" "$root/usr/local/bin/node"
for lib in $(ldd "$node_bin" | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done

# npm, linked the way the official images link it.
cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
echo 'cafile=/etc/ssl/certs/ca-certificates.crt' >"$root/usr/local/etc/npmrc"

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
node:x:1000:1000:node:/home/node:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
node:x:1000:
nogroup:x:65534:
EOF
chown 1000:1000 "$root/home/node"

tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV HOME=/root' \
  --change 'CMD ["node"]' \
  "${changes[@]}" - "$tag" >/dev/null
echo "local-base-image: $tag (node $("$node_bin" --version), npm $(node "$npm_dir/bin/npm-cli.js" --version))"
