"""TEMPORARY re-export: the volume writers moved to ``volume_io.py`` (``write`` is now ``write_volume``,
``ConvertError`` is ``errors.VolumeWriteError``). cli.py (``cmd_load``) and tui/screens/viewer.py (save) import
this module; the faces move to ``volume_io`` at the merge — delete this file then."""

from .errors import VolumeWriteError as ConvertError
from .volume_io import LPS_TO_RAS, fsl_bvecs, output_format, write_fsl_gradients
from .volume_io import write_volume as write

__all__ = ["LPS_TO_RAS", "ConvertError", "fsl_bvecs", "output_format", "write", "write_fsl_gradients"]
