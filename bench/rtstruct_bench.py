"""RTSTRUCT benchmark: a structure set rasterised on its CT grid, dicomtui side by side with plastimatch.

One generated CT (512x512, N slices; no real patients) and one RT Structure Set with three ROIs that overlap —
BODY (a 140 mm sphere, 360 points per contour), PTV (30 mm), a shell with a hole — imported (link mode) into a
fresh database once. Then, alternating run by run (best of 3):

  ours          examine_series + load of the structure set: the referenced CT read (its default volume) and
                every ROI rasterised, in process
  rasterise     core.rasterize alone, every ROI on the CT grid (contours already read)
  plastimatch   plastimatch convert --input RS --referenced-ct CT --output-prefix OUT --prefix-format nrrd
                --xor-contours (whole process: reads the CT, rasterises, writes one NRRD per ROI)

Checked once: per ROI, Dice >= 0.98 between our mask and plastimatch's and voxel counts within 2 % (exit 1 if
not). No issue target: the ratio is printed for the record.

Run:  .venv/bin/python bench/rtstruct_bench.py            (100 slices)
      .venv/bin/python bench/rtstruct_bench.py --quick    (30 slices)
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import numpy as np  # noqa: E402
import pydicom  # noqa: E402
from _common import check  # noqa: E402

from dicomtui.core.database import DicomDatabase  # noqa: E402
from dicomtui.core.examine import examine_series, load  # noqa: E402
from dicomtui.core.examine.rtstruct import read_rois  # noqa: E402
from dicomtui.core.indexer import import_paths  # noqa: E402
from dicomtui.core.rasterize import rasterize  # noqa: E402
from dicomtui.core.synth import SeriesSpec, series_datasets  # noqa: E402
from dicomtui.core.synth_rt import Roi, rtstruct_dataset, shell, slice_positions, sphere, write_datasets  # noqa: E402


def read_nrrd(path: Path) -> np.ndarray:
    head, _, body = path.read_bytes().partition(b"\n\n")
    sizes = [int(s) for s in next(line for line in head.decode().splitlines() if line.startswith("sizes:")).split()[1:]]
    return np.frombuffer(gzip.decompress(body), dtype=np.uint8).reshape(sizes[::-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 slices instead of 100")
    args = parser.parse_args()
    plastimatch = shutil.which("plastimatch")
    slices = 30 if args.quick else 100
    with tempfile.TemporaryDirectory(prefix="rtstruct-bench-") as tmp_name:
        tmp = Path(tmp_name)
        spec = SeriesSpec(slices=slices, rows=512, cols=512, pixel_spacing=(0.8, 0.8), slice_spacing=2.0,
                          origin=(-204.8, -204.8, -slices + 0.0))
        ct = series_datasets(spec)
        zs = slice_positions(ct)
        rois = [Roi("BODY", sphere((0, 0, 0), 140, zs, 360), kind="EXTERNAL"),
                Roi("PTV", sphere((20, 0, 0), 30, zs, 120)), Roi("shell", shell((-40, 30, 10), 60, 40, zs))]
        structure_set = rtstruct_dataset(ct, rois)
        write_datasets(tmp / "ct", ct)
        (rs_path,) = write_datasets(tmp / "rs", [structure_set])
        db = DicomDatabase.open(tmp / "db")
        import_paths(db, [tmp / "ct", tmp / "rs"])
        series_id = db.find("series", structure_set.SeriesInstanceUID)["id"]
        contours = read_rois(pydicom.dcmread(rs_path))
        print(f"CT 512x512x{slices}, {sum(len(r.contours) for r in contours)} contours in {len(rois)} ROIs "
              f"(machine shared with other work: compare the ratio, not the seconds)")
        ours, alone, theirs = [], [], []
        volumes = []
        for _ in range(3):
            start = time.perf_counter()
            (item,) = examine_series(db, [series_id])
            volumes = load(db, item)
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            for roi in contours:
                rasterize(roi.contours, volumes[0].affine, volumes[0].array.shape)
            alone.append(time.perf_counter() - start)
            if plastimatch:
                shutil.rmtree(tmp / "out", ignore_errors=True)
                start = time.perf_counter()
                done = subprocess.run([plastimatch, "convert", "--input", str(rs_path), "--referenced-ct",
                                       str(tmp / "ct"), "--output-prefix", str(tmp / "out"), "--prefix-format",
                                       "nrrd", "--xor-contours"], capture_output=True)
                theirs.append(time.perf_counter() - start)
                check(done.returncode == 0, f"plastimatch exited {done.returncode}")
        db.close()
        print(f"  ours (examine + load, CT read included)  {min(ours):.2f} s")
        print(f"  our rasterisation alone                  {min(alone):.2f} s")
        if not plastimatch:
            print("  plastimatch: not installed (Debian plastimatch): no side by side")
            return
        print(f"  plastimatch convert (process)            {min(theirs):.2f} s")
        print(f"  ratio plastimatch / ours                 {min(theirs) / min(ours):.2f}x")
        for volume in volumes:
            label = volume.segments[0].label
            mine, ref = volume.array > 0, read_nrrd(tmp / "out" / f"{label}.nrrd") > 0
            dice = 2 * np.sum(mine & ref) / (mine.sum() + ref.sum())
            check(dice >= 0.98 and abs(int(mine.sum()) - int(ref.sum())) <= 0.02 * ref.sum(),
                  f"{label}: Dice {dice:.4f}, {mine.sum()} voxels vs {ref.sum()}")
            print(f"  {label}: Dice {dice:.4f}, voxels {mine.sum():,} vs {ref.sum():,}")


if __name__ == "__main__":
    main()
