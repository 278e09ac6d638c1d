"""Load benchmark: one series read into one volume, dicomtui side by side with pydicom, dcm2niix and the raw limit.

Measures slices per second, with a warm page cache, on one generated CT series (no real patients): 300 slices of
512x512 int16, uncompressed, RescaleIntercept -1024. The folder is imported (link mode) into a fresh database once;
then these runs, every output in a fresh folder under bench/out/ (deleted afterwards):

  ours in-process   load(db, chosen) after examine_series (timed apart): the array in memory (first call, best)
  ours process      dicomtui --db DB load SERIES_UID -o OUT.nii (and OUT.nii.gz): whole process wall time and peak
                    RSS; the load streams each slice into the output (core/nifti_stream.py)
  pydicom           [dcmread(p).pixel_array for p in files] then np.stack, 1 thread
  dcm2niix          dcm2niix -o OUT -f ref -z n FOLDER (and -z y, pigz): whole process wall time and peak RSS,
                    alternating with ours run by run
  raw limit         np.fromfile(path, "<i2", rows*cols, offset=<pixel offset stored at import>) per file, 1 thread
  raw readinto      the same bytes read with readinto straight into one preallocated array, 1 thread
  NIfTI write       volume_io.write_volume(volume, OUT.nii / OUT.nii.gz) alone
  deflate           zlib / python-isal / zlib-ng (when installed) level 1 on one core, on the volume's bytes and
                    on a noisy head phantom (closer to a real CT than the very compressible generated series)
  imports           python -c "import ..." of what the load command imports (process wall time)

The ratio column is ours / peer in slices/s: ours in-process for the in-process peers (pydicom, raw), the
dicomtui process for dcm2niix. Peak RSS is the child's maximum resident set (GNU time %M, else ru_maxrss of a
wrapper's children) and is compared to the voxel bytes (slices x 512 x 512 x 2). Correctness is checked once:
our voxels equal pydicom's pixel_array x RescaleSlope + RescaleIntercept, stacked along the slice normal, and our
NIfTI holds the same voxels on the same grid as dcm2niix's. A failed check exits 1; targets not met do not.
The issue-15 rows (ours process vs dcm2niix, .nii and .nii.gz) are printed as `TARGET |` lines for `make bench`.
Our modules are byte-compiled first (as `pip install` does): with PYTHONDONTWRITEBYTECODE set and no __pycache__,
each process would otherwise compile them again (~40 ms here).

Run:  .venv/bin/python bench/load_bench.py            (300 slices; about half a minute)
      .venv/bin/python bench/load_bench.py --quick    (50 slices; a few seconds)
Data is generated once into bench/out/data/large-N (shared with import_bench.py, `.complete` stamp beside it).
"""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pydicom  # noqa: E402
from _common import check, list_files, target_row, warm  # noqa: E402

from dicomtui.core import volume_io  # noqa: E402
from dicomtui.core.database import DicomDatabase  # noqa: E402
from dicomtui.core.examine import examine_series, load  # noqa: E402
from dicomtui.core.indexer import import_paths  # noqa: E402
from dicomtui.core.synth import SeriesSpec, write_series  # noqa: E402

OUT = ROOT / "bench" / "out"
DATA = OUT / "data"
PYTHON = sys.executable
DICOMTUI = str(Path(sys.executable).with_name("dicomtui"))
GNU_TIME = "/usr/bin/time"
ROWS = COLS = 512
EXTS = (".nii", ".nii.gz")
TARGET_VS_D2N = {".nii": 1.2, ".nii.gz": 2.0}  # issue 15: dcm2niix's time / ours, whole process
TARGET_SPS, TARGET_RSS_RATIO = 5_000, 1.5
LOAD_IMPORTS = ["dicomtui.cli", "dicomtui.config", "dicomtui.core.database", "dicomtui.core.examine",
                "dicomtui.core.pixels", "dicomtui.core.volume_io"]


# ---- data -------------------------------------------------------------------------------------------------------



def prepare_data(slices: int) -> Path:
    """bench/out/data/large-N exactly as import_bench.py writes it; generated when missing or incomplete."""
    folder = DATA / f"large-{slices}"
    stamp = folder.with_suffix(".complete")  # outside the folder: the importer would see it otherwise
    if stamp.exists() and len(list_files(folder)) == slices:
        print(f"data: cached in {folder.relative_to(ROOT)} ({slices:,} files)")
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    stamp.unlink(missing_ok=True)
    start = time.perf_counter()
    spec = SeriesSpec(slices=slices, rows=ROWS, cols=COLS, patient_id="BIG0001", series_description="Large")
    written = len(write_series(folder, spec))
    if written != slices or len(list_files(folder)) != slices:
        raise SystemExit(f"data: wrote {written} files, expected {slices}")
    stamp.write_text(f"{slices}\n")
    print(f"data: generated {slices:,} files in {time.perf_counter() - start:.1f} s")
    return folder




# ---- helpers ----------------------------------------------------------------------------------------------------



def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def run_measured(cmd: list[str], tmp: Path) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of one child process; fails the benchmark when it fails."""
    if os.access(GNU_TIME, os.X_OK):
        report = tmp / "time.txt"
        full = [GNU_TIME, "-f", "%M", "-o", str(report)] + cmd
    else:  # a fresh wrapper, so that ru_maxrss of its children is this child's alone
        report = None
        full = [PYTHON, "-c", "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]).returncode; "
                "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r)"] + cmd
    start = time.perf_counter()
    proc = subprocess.run(full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    check(proc.returncode == 0, f"{' '.join(cmd[:3])} … exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    text = report.read_text() if report else proc.stderr
    return seconds, int(text.strip().splitlines()[-1]) * 1024  # KiB on Linux


def stack_order(datasets) -> list[int]:
    """Indices of ``datasets`` sorted along the slice normal, from pydicom's own reading of the geometry."""
    iop = np.array(datasets[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    return sorted(range(len(datasets)), key=lambda k: float(np.dot(datasets[k].ImagePositionPatient, normal)))


# ---- runs -------------------------------------------------------------------------------------------------------

def ours_in_process(db: DicomDatabase, sid: int, n: int):
    """(examine seconds, load seconds, volume, chosen loadable): only ``load(db, chosen)`` counts as the load."""
    start = time.perf_counter()
    loadables = examine_series(db, [sid])
    chosen = next(item for item in loadables if item.selected)
    examined = time.perf_counter()
    volumes = load(db, chosen)
    loaded = time.perf_counter()
    if len(volumes) != 1:
        raise SystemExit(f"benchmark check failed: load returned {len(volumes)} volumes, expected one")
    volume = volumes[0]
    check(volume.array.shape == (n, ROWS, COLS), f"volume shape {volume.array.shape}, expected {(n, ROWS, COLS)}")
    return examined - start, loaded - examined, volume, chosen


def pydicom_stack(paths: list[str]) -> np.ndarray:
    return np.stack([pydicom.dcmread(p).pixel_array for p in paths])


def raw_fromfile(instances: list[dict]) -> list[np.ndarray]:
    return [np.fromfile(i["path"], dtype="<i2", count=ROWS * COLS, offset=i["pixel_offset"]) for i in instances]


def raw_readinto(instances: list[dict]) -> np.ndarray:
    out = np.empty((len(instances), ROWS, COLS), dtype="<i2")
    for k, inst in enumerate(instances):
        with open(inst["path"], "rb", buffering=0) as f:
            f.seek(inst["pixel_offset"])
            f.readinto(memoryview(out[k]).cast("B"))
    return out


def deflate_rates(repeat: int, volume_bytes: bytes) -> list[tuple[str, str, float, float]]:
    """(data, compressor, MB/s, compressed/original) of one-core level-1 deflate into a gzip stream: stdlib
    zlib, python-isal (our .nii.gz writer) and zlib-ng when installed; on the benchmark's volume (synthetic, very
    compressible) and on 40 slices of the head phantom with CT-like noise (sigma 10 HU), closer to a real CT."""
    import zlib

    from dicomtui.core.synth import SeriesSpec, head_phantom

    spec = SeriesSpec(slices=40, rows=ROWS, cols=COLS)
    rng = np.random.default_rng(0)
    noisy = np.stack([head_phantom(k, spec) + rng.normal(0, 10, (ROWS, COLS)).astype(np.int16) for k in range(40)])
    compressors = [("zlib", zlib)]
    for label, module in (("python-isal (ISA-L)", "isal.isal_zlib"), ("zlib-ng", "zlib_ng.zlib_ng")):
        try:
            compressors.append((label, __import__(module, fromlist=["compressobj"])))
        except ImportError:
            print(f"  deflate: {label} not installed, not measured")
    out = []
    for data_label, data in (("bench volume", volume_bytes), ("noisy head phantom", noisy.tobytes())):
        for label, module in compressors:
            best, size = float("inf"), 0
            for _ in range(repeat):
                start = time.perf_counter()
                c = module.compressobj(1, zlib.DEFLATED, 31)
                size = len(c.compress(data)) + len(c.flush())
                best = min(best, time.perf_counter() - start)
            out.append((data_label, label, len(data) / best / 1e6, size / len(data)))
    return out


def import_seconds(modules: list[str], repeat: int) -> float:
    cmd = [PYTHON, "-c", "; ".join(f"import {m}" for m in modules) if modules else "pass"]
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=ROOT)
        runs.append(time.perf_counter() - start)
    return min(runs)


# ---- main -------------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="50 slices instead of 300")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs each (default 3)")
    args = parser.parse_args()
    n = 50 if args.quick else 300
    repeat = max(1, args.repeat)

    have_dcm2niix = shutil.which("dcm2niix") is not None
    d2n_version = subprocess.run(["dcm2niix", "--version"], capture_output=True, text=True).stdout.split("\n")[0] \
        .split("version")[-1].split()[0] if have_dcm2niix else "not found"
    commit = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    print(f"Python {platform.python_version()}   nproc: {len(os.sched_getaffinity(0))}   numpy {np.__version__}   "
          f"pydicom {pydicom.__version__}   nibabel {nib.__version__}   dcm2niix {d2n_version}   commit {commit}")
    OUT.mkdir(parents=True, exist_ok=True)
    compileall.compile_dir(ROOT / "dicomtui", quiet=1)
    folder = prepare_data(n)
    paths = list_files(folder)
    voxel_bytes = n * ROWS * COLS * 2
    print(f"\n== {n:,} slices of {ROWS}x{COLS} int16 ({voxel_bytes / 2**20:.0f} MiB of voxels), "
          f"best of {repeat}, warm page cache")
    warm(paths)

    tmp = Path(tempfile.mkdtemp(prefix="load-", dir=OUT))
    try:
        db_dir = tmp / "db"
        db = DicomDatabase.open(db_dir)
        seconds, report = timed(import_paths, db, [folder], "link")
        check(report.instances_added == n and not report.rejected,
              f"import: {report.instances_added} added, {len(report.rejected)} rejected, expected {n} added")
        series = db.series()
        check(len(series) == 1, f"{len(series)} series in the database, expected 1")
        sid, series_uid = series[0]["id"], series[0]["SeriesInstanceUID"]
        instances = db.instances([sid])
        print(f"  import (link, once): {seconds:.3f} s")

        # ours, in-process: the first call pays for fresh pages of a new array, as a new process always does
        load_runs, examine_runs = [], []
        volume = chosen = None
        for _ in range(repeat):
            examined, loaded, vol, ch = ours_in_process(db, sid, n)
            examine_runs.append(examined)
            load_runs.append(loaded)
            if volume is None:
                volume, chosen = vol, ch
            del vol, ch
        first_load, best_load = load_runs[0], min(load_runs)
        print(f"  examine_series (not in the load times below): {min(examine_runs):.3f} s")

        # ours, whole process, and dcm2niix, alternating (.nii, then .nii.gz): wall time and peak RSS
        def ours_process(k: int, ext: str) -> tuple[float, int]:
            return run_measured([DICOMTUI, "--db", str(db_dir), "load", series_uid, "-o", str(tmp / f"ours{k}{ext}")],
                                tmp)

        def d2n_process(k: int, ext: str) -> tuple[float, int]:
            out = tmp / f"d2n{k}{ext}"
            out.mkdir()
            return run_measured(["dcm2niix", "-o", str(out), "-f", "ref", "-z", "y" if ext == ".nii.gz" else "n",
                                 str(folder)], tmp)

        runs: dict[tuple[str, str], list[tuple[float, int]]] = {}
        load = os.getloadavg()[0]
        for k in range(repeat):
            for ext in EXTS:
                runs.setdefault(("ours", ext), []).append(ours_process(k, ext))
                if have_dcm2niix:
                    runs.setdefault(("d2n", ext), []).append(d2n_process(k, ext))
        best_of = {key: (min(s for s, _ in r), max(m for _, m in r)) for key, r in runs.items()}
        ours_rss = best_of[("ours", ".nii")][1]
        print(f"  ours and dcm2niix alternated, best of {repeat}; load average {load:.1f} before, "
              f"{os.getloadavg()[0]:.1f} after (2 cores)")

        pyd = min(timed(pydicom_stack, paths)[0] for _ in range(repeat))
        raw = min(timed(raw_fromfile, instances)[0] for _ in range(repeat))
        into = min(timed(raw_readinto, instances)[0] for _ in range(repeat))
        writes = {}
        for ext in (".nii", ".nii.gz"):
            writes[ext] = min(timed(volume_io.write_volume, volume, tmp / f"write{ext}")[0] for _ in range(repeat))

        # correctness, once: voxels vs pydicom (own sort along the normal, own rescale); NIfTI vs dcm2niix
        headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
        order = stack_order(headers)
        stored = pydicom_stack(paths)
        slopes = {float(getattr(h, "RescaleSlope", 1)) for h in headers}
        intercepts = {float(getattr(h, "RescaleIntercept", 0)) for h in headers}
        expected = np.stack([stored[k] * float(getattr(headers[k], "RescaleSlope", 1))
                             + float(getattr(headers[k], "RescaleIntercept", 0)) for k in order])
        check(np.array_equal(volume.array, expected), "our voxels differ from pydicom's rescaled pixel_array")
        check([i["SOPInstanceUID"] for i in chosen.instances] == [headers[k].SOPInstanceUID for k in order],
              "our slice order differs from pydicom's positions along the normal")
        check(np.array_equal(np.stack(raw_fromfile(instances)).reshape(n, ROWS, COLS),
                             stored[[paths.index(str(i["path"])) for i in instances]]),
              "np.fromfile at the stored pixel offsets differs from pydicom's pixel_array")
        print(f"  check: {n} slices equal pydicom x slope {'/'.join(f'{s:g}' for s in sorted(slopes))} + "
              f"intercept {'/'.join(f'{b:g}' for b in sorted(intercepts))}, same order along the normal: OK")
        for ext in EXTS:  # the file `load -o` wrote holds the in-process volume, on its grid
            img = nib.load(tmp / f"ours0{ext}")
            check(np.array_equal(np.asanyarray(img.dataobj), volume.array.T), f"load -o {ext}: voxels differ "
                  "from the in-process volume (scl_slope/scl_inter applied)")
            check(np.allclose(img.affine, volume_io.LPS_TO_RAS @ volume.affine, atol=1e-4),
                  f"load -o {ext}: affine differs from the in-process volume's")
        print("  check: load -o .nii / .nii.gz hold the in-process volume's voxels and affine: OK")
        if have_dcm2niix:
            for ext in EXTS:
                refs = list((tmp / f"d2n0{ext}").glob(f"*{ext}"))
                check(len(refs) == 1, f"dcm2niix wrote {len(refs)} {ext} files, expected 1")
                ours_img = nib.as_closest_canonical(nib.load(tmp / f"ours0{ext}"))
                ref_img = nib.as_closest_canonical(nib.load(refs[0]))
                check(ours_img.shape == ref_img.shape, f"NIfTI shape {ours_img.shape}, dcm2niix {ref_img.shape}")
                check(np.allclose(ours_img.affine, ref_img.affine, atol=1e-3),
                      f"NIfTI affine differs from dcm2niix's:\n{ours_img.affine}\n{ref_img.affine}")
                check(np.array_equal(np.asanyarray(ours_img.dataobj), np.asanyarray(ref_img.dataobj)),
                      f"{ext} voxels differ from dcm2niix's")
            print("  check: dicomtui load -o .nii / .nii.gz have dcm2niix's voxels and affine (closest canonical): OK")
        deflate = deflate_rates(repeat, volume.array.tobytes())
        db.close()
        del volume, expected, stored
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    imports = [("python -c pass", import_seconds([], repeat)),
               ("import dicomtui.cli", import_seconds(["dicomtui.cli"], repeat)),
               ("import nibabel (not used by load)", import_seconds(["nibabel"], repeat)),
               ("load command imports", import_seconds(LOAD_IMPORTS, repeat))]

    # ---- report ----
    ours_sps = n / best_load
    rows = [("ours in-process, first call", first_load, None), ("ours in-process, best", best_load, None)]
    for ext in EXTS:
        ours_s = best_of[("ours", ext)][0]
        rows.append((f"ours process (load -o {ext})", ours_s, None))
        if have_dcm2niix:
            rows.append((f"dcm2niix -z {'y' if ext == '.nii.gz' else 'n'} (process)", best_of[("d2n", ext)][0],
                         n / ours_s))
    rows += [("pydicom + np.stack", pyd, ours_sps), ("raw limit: np.fromfile", raw, ours_sps),
             ("raw readinto, 1 array", into, ours_sps),
             ("NIfTI write .nii alone", writes[".nii"], None), ("NIfTI write .nii.gz alone", writes[".nii.gz"], None)]
    print(f"\n  {'run':<30}{'slices':>8}{'seconds':>10}{'slices/s':>12}{'ours/peer':>11}")
    for label, seconds, ours in rows:
        rate = n / seconds
        ratio = f"{ours / rate:.2f}x" if ours is not None else "-"
        print(f"  {label:<30}{n:>8,}{seconds:>10.3f}{rate:>12,.0f}{ratio:>11}")
    print("  (ratio: ours in-process best vs pydicom and raw; ours process vs dcm2niix to the same format;\n"
          "   dcm2niix -z y deflates through pigz, level 6, on both cores; ours through ISA-L level 1 in one "
          "thread per core)")

    print(f"\n  {'peak RSS':<30}{'MiB':>8}{'/ voxel bytes':>16}")
    for (who, ext), (_, rss) in best_of.items():
        label = f"ours process (load -o {ext})" if who == "ours" else f"dcm2niix to {ext}"
        print(f"  {label:<30}{rss / 2**20:>8.0f}{rss / voxel_bytes:>16.2f}")

    print(f"\n  {'deflate level 1, one core':<42}{'MB/s':>8}{'ratio':>8}")
    for data_label, label, rate, ratio in deflate:
        print(f"  {data_label + ': ' + label:<42}{rate:>8,.0f}{ratio:>8.3f}")

    print(f"\n  {'process start and imports':<30}{'seconds':>8}")
    for label, seconds in imports:
        print(f"  {label:<30}{seconds:>8.3f}")
    print(f"  (load command imports: {', '.join(LOAD_IMPORTS)})")

    print("\n== targets" + (f" (--quick: {n} slices, indicative only)" if args.quick else ""))
    rss_ratio = ours_rss / voxel_bytes
    targets = [(f"in-process load >= {TARGET_SPS:,} slices/s", f"{ours_sps:,.0f} slices/s", ours_sps >= TARGET_SPS),
               (f"peak RSS <= {TARGET_RSS_RATIO:g} x voxel bytes", f"{rss_ratio:.2f}x", rss_ratio <= TARGET_RSS_RATIO)]
    for label, value, met in targets:
        print(f"  {label:<36}{value:>20}   {'MET' if met else 'NOT MET'}")
    size = f"{n} x {ROWS}x{COLS} int16" + (" (--quick)" if args.quick else "")
    works = {".nii": f"load SERIES -o x.nii, {size}, whole process",
             ".nii.gz": f"load SERIES -o x.nii.gz, {size}, whole process"}
    for ext in EXTS:
        goal = f">= {TARGET_VS_D2N[ext]:g}x dcm2niix -z {'y' if ext == '.nii.gz' else 'n'}"
        if not have_dcm2niix:
            target_row(works[ext], "dcm2niix not on PATH", goal, None)
            continue
        ours_s, peer_s = best_of[("ours", ext)][0], best_of[("d2n", ext)][0]
        ratio = peer_s / ours_s
        target_row(works[ext], f"{ours_s:.3f} s vs {peer_s:.3f} s ({ratio:.2f}x)", goal,
                   ratio >= TARGET_VS_D2N[ext])

if __name__ == "__main__":
    main()
