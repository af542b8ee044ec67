"""`ccexpert describe` outputs carry their style (layer_styles): they open styled in QGIS wherever they are opened."""

from __future__ import annotations

from ccexpert.describe import DescribeOptions, EngineCaptioner, describe
from ccexpert_changes.core.fields import LAYER_NAME
from ccexpert_changes.core.style_table import default_style, shipped_style
from rasterio.transform import from_origin
from service_helpers import ORIGIN, EchoEngine, blocks, write_tif


def test_describe_output_holds_the_shipped_style_as_default(tmp_path):
    transform = from_origin(*ORIGIN, 0.5, 0.5)
    before = write_tif(tmp_path / "b.tif", blocks(768), transform)
    after = write_tif(tmp_path / "a.tif", blocks(768) + 3, transform)
    out = tmp_path / "o.gpkg"
    describe(DescribeOptions(str(before), str(after), str(out), progress=False), EngineCaptioner(EchoEngine()))
    qml = default_style(out, LAYER_NAME)
    assert qml == shipped_style() and "RuleRenderer" in qml and "mapTip" in qml
    # a resumed run writes it again, still one default
    describe(
        DescribeOptions(str(before), str(after), str(out), resume=True, progress=False), EngineCaptioner(EchoEngine())
    )
    assert default_style(out, LAYER_NAME) == qml
