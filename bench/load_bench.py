"""Load benchmark: one series read into one volume, dicomtui side by side with pydicom, dcm2niix and the raw limit.

Measures slices per second, with a warm page cache, on one generated CT series (no real patients): 300 slices of
512x512 int16, uncompressed, RescaleIntercept -1024. The folder is imported (link mode) into a fresh database once;
then these runs, every output in a fresh folder under bench/out/ (deleted afterwards):

  ours in-process   load(db, chosen) after examine_series (timed apart): the array in memory (first call, best)
  ours process      dicomtui --db DB load SERIES_UID -o OUT.nii: whole process wall time and peak RSS
  pydicom           [dcmread(p).pixel_array for p in files] then np.stack, 1 thread
  dcm2niix          dcm2niix -o OUT -f ref -z n FOLDER: whole process wall time and peak RSS
  raw limit         np.fromfile(path, "<i2", rows*cols, offset=<pixel offset stored at import>) per file, 1 thread
  raw readinto      the same bytes read with readinto straight into one preallocated array, 1 thread
  NIfTI write       volume_io.write_volume(volume, OUT.nii / OUT.nii.gz) alone
  imports           python -c "import ..." of what the load command imports (process wall time)

The ratio column is ours / peer in slices/s: ours in-process for the in-process peers (pydicom, raw), the
dicomtui process for dcm2niix. Peak RSS is the child's maximum resident set (GNU time %M, else ru_maxrss of a
wrapper's children) and is compared to the voxel bytes (slices x 512 x 512 x 2). Correctness is checked once:
our voxels equal pydicom's pixel_array x RescaleSlope + RescaleIntercept, stacked along the slice normal, and our
NIfTI holds the same voxels on the same grid as dcm2niix's. A failed check exits 1; targets not met do not.

Run:  .venv/bin/python bench/load_bench.py            (300 slices; about half a minute)
      .venv/bin/python bench/load_bench.py --quick    (50 slices; a few seconds)
Data is generated once into bench/out/data/large-N (shared with import_bench.py, `.complete` stamp beside it).
"""

from __future__ import annotations

import argparse
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
from _common import check, list_files, warm  # noqa: E402

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

        # ours, whole process, then dcm2niix: wall time and peak RSS
        def ours_process(k: int) -> tuple[float, int]:
            return run_measured([DICOMTUI, "--db", str(db_dir), "load", series_uid, "-o", str(tmp / f"ours{k}.nii")],
                                tmp)

        def d2n_process(k: int) -> tuple[float, int]:
            out = tmp / f"d2n{k}"
            out.mkdir()
            return run_measured(["dcm2niix", "-o", str(out), "-f", "ref", "-z", "n", str(folder)], tmp)

        proc_runs = [ours_process(k) for k in range(repeat)]
        ours_proc, ours_rss = min(s for s, _ in proc_runs), max(r for _, r in proc_runs)
        d2n_proc = d2n_rss = None
        if have_dcm2niix:
            d2n_runs = [d2n_process(k) for k in range(repeat)]
            d2n_proc, d2n_rss = min(s for s, _ in d2n_runs), max(r for _, r in d2n_runs)

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
        if have_dcm2niix:
            refs = list((tmp / "d2n0").glob("*.nii"))
            check(len(refs) == 1, f"dcm2niix wrote {len(refs)} NIfTI files, expected 1")
            ours_img = nib.as_closest_canonical(nib.load(tmp / "ours0.nii"))
            ref_img = nib.as_closest_canonical(nib.load(refs[0]))
            check(ours_img.shape == ref_img.shape, f"NIfTI shape {ours_img.shape}, dcm2niix {ref_img.shape}")
            check(np.allclose(ours_img.affine, ref_img.affine, atol=1e-3),
                  f"NIfTI affine differs from dcm2niix's:\n{ours_img.affine}\n{ref_img.affine}")
            check(np.array_equal(np.asanyarray(ours_img.dataobj), np.asanyarray(ref_img.dataobj)),
                  "NIfTI voxels differ from dcm2niix's")
            print("  check: dicomtui load -o .nii has dcm2niix's voxels and affine (closest canonical): OK")
        db.close()
        del volume, expected, stored
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    imports = [("python -c pass", import_seconds([], repeat)),
               ("import dicomtui.cli", import_seconds(["dicomtui.cli"], repeat)),
               ("import nibabel (not used by load)", import_seconds(["nibabel"], repeat)),
               ("load command imports", import_seconds(LOAD_IMPORTS, repeat))]

    # ---- report ----
    ours_sps, proc_sps = n / best_load, n / ours_proc
    rows = [("ours in-process, first call", first_load, None), ("ours in-process, best", best_load, None),
            ("ours process (load -o .nii)", ours_proc, None),
            ("pydicom + np.stack", pyd, ours_sps)]
    if have_dcm2niix:
        rows.append(("dcm2niix -z n (process)", d2n_proc, proc_sps))
    rows += [("raw limit: np.fromfile", raw, ours_sps), ("raw readinto, 1 array", into, ours_sps),
             ("NIfTI write .nii alone", writes[".nii"], None), ("NIfTI write .nii.gz alone", writes[".nii.gz"], None)]
    print(f"\n  {'run':<30}{'slices':>8}{'seconds':>10}{'slices/s':>12}{'ours/peer':>11}")
    for label, seconds, ours in rows:
        rate = n / seconds
        ratio = f"{ours / rate:.2f}x" if ours is not None else "-"
        print(f"  {label:<30}{n:>8,}{seconds:>10.3f}{rate:>12,.0f}{ratio:>11}")
    print("  (ratio: ours in-process best vs pydicom and raw; ours process vs dcm2niix)")

    print(f"\n  {'peak RSS':<30}{'MiB':>8}{'/ voxel bytes':>16}")
    mem = [("ours process (load -o .nii)", ours_rss)] + ([("dcm2niix -z n", d2n_rss)] if have_dcm2niix else [])
    for label, rss in mem:
        print(f"  {label:<30}{rss / 2**20:>8.0f}{rss / voxel_bytes:>16.2f}")

    print(f"\n  {'process start and imports':<30}{'seconds':>8}")
    for label, seconds in imports:
        print(f"  {label:<30}{seconds:>8.3f}")
    print(f"  (load command imports: {', '.join(LOAD_IMPORTS)})")

    print("\n== targets" + (f" (--quick: {n} slices, indicative only)" if args.quick else ""))
    rss_ratio = ours_rss / voxel_bytes
    targets = [(f"in-process load >= {TARGET_SPS:,} slices/s", f"{ours_sps:,.0f} slices/s", ours_sps >= TARGET_SPS)]
    if have_dcm2niix:
        targets.append(("load -o .nii wall <= dcm2niix", f"{ours_proc:.2f} vs {d2n_proc:.2f} s", ours_proc <= d2n_proc))
    else:
        print("  load process vs dcm2niix: SKIPPED (dcm2niix not found on PATH)")
    targets.append((f"peak RSS <= {TARGET_RSS_RATIO:g} x voxel bytes", f"{rss_ratio:.2f}x",
                    rss_ratio <= TARGET_RSS_RATIO))
    for label, value, met in targets:
        print(f"  {label:<36}{value:>20}   {'MET' if met else 'NOT MET'}")


if __name__ == "__main__":
    main()
