"""Published per-network latencies hwsim is compared with, each with its source and input size.

Coral (``CORAL_USB``): "Edge TPU performance benchmarks" (coral.ai/docs/edgetpu/benchmarks), table 1,
column "Desktop CPU + USB Accelerator (USB 3.0) with Edge TPU", time per inference in ms; the stored copy we
read cuts off after EfficientNet-EdgeTpu-M, so EfficientNet-EdgeTpu-L comes from Coral's image
classification model page (coral.ai/models/image-classification: "Latency" measured with the USB
Accelerator on a desktop CPU). The SSD rows are labelled 224x224 in the table, but Coral's SSD MobileNet v1
and v2 models are 300x300 and its object-detection model page lists the same latencies (6.5 and 7.3 ms) for
them at 300x300, so they are built at 300x300.

Qualcomm (``HEXAGON``): Qualcomm AI Hub model cards (github.com/quic/ai-hub-models,
``qai_hub_models/models/<model>/perf.yaml``), device "Samsung Galaxy S23" (Snapdragon 8 Gen 2, Hexagon
V73), int8 weights and activations (w8a8), TFLite runtime (QNN delegate on the NPU), in ms; the tag each
figure was read from is given.

``fit`` marks the rows the device's fitted constants were fitted on; every other row is held back.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One published latency: the network (``benchmarks/build_models.py`` name), its input, the figure."""

    network: str
    label: str
    input_size: int
    published_ms: float
    source: str
    fit: bool = False


CORAL_TABLE = "coral.ai/docs/edgetpu/benchmarks, USB Accelerator + desktop CPU"
CORAL_MODELS = "coral.ai/models/image-classification (USB Accelerator, desktop CPU)"

CORAL_USB = (
    Figure("mobilenet_v1", "MobileNet v1", 224, 2.4, CORAL_TABLE, fit=True),
    Figure("mobilenet_v2", "MobileNet v2", 224, 2.6, CORAL_TABLE),
    Figure("ssd_mobilenet_v1_300", "MobileNet v1 SSD", 300, 6.5, CORAL_TABLE),
    Figure("ssd_mobilenet_v2_300", "MobileNet v2 SSD", 300, 7.2, CORAL_TABLE),
    Figure("inception_v1", "Inception v1", 224, 3.4, CORAL_TABLE, fit=True),
    Figure("inception_v4_299", "Inception v4", 299, 85.0, CORAL_TABLE),
    Figure("inception_resnet_v2_299", "Inception-ResNet V2", 299, 57.0, CORAL_TABLE),
    Figure("resnet50_v1_299", "ResNet-50 V1", 299, 49.0, CORAL_TABLE),
    Figure("resnet50_v2_299", "ResNet-50 V2", 299, 50.0, CORAL_TABLE),
    Figure("resnet152_v2_299", "ResNet-152 V2", 299, 128.0, CORAL_TABLE),
    Figure("densenet121", "DenseNet", 224, 20.0, CORAL_TABLE),
    Figure("squeezenet", "SqueezeNet", 224, 2.1, CORAL_TABLE),
    Figure("vgg16", "VGG16", 224, 296.0, CORAL_TABLE, fit=True),
    Figure("vgg19", "VGG19", 224, 308.0, CORAL_TABLE),
    Figure("deeplab_v3_mnv2_513", "DeepLab V3", 513, 52.0, CORAL_TABLE),
    Figure("unet_mnv2_128", "Unet Mv2", 128, 3.3, CORAL_TABLE),
    Figure("efficientnet_edgetpu_s", "EfficientNet-EdgeTpu-S", 224, 5.1, CORAL_TABLE),
    Figure("efficientnet_edgetpu_m", "EfficientNet-EdgeTpu-M", 240, 8.7, CORAL_TABLE),
    Figure("efficientnet_edgetpu_l", "EfficientNet-EdgeTpu-L", 300, 21.3, CORAL_MODELS),
)

# The same table's "Desktop CPU" column: the whole model in TFLite on the host CPU alone, in ms. It measures
# the host that runs what the Edge TPU does not (``bench_published.py host-rate``). The EfficientNet rows are
# left out: their desktop times (5431 and 8469 ms) are 8x the same table's embedded-CPU times, an anomaly.
CORAL_DESKTOP_CPU_MS = {
    "mobilenet_v1": 53.0,
    "mobilenet_v2": 51.0,
    "ssd_mobilenet_v1_300": 109.0,
    "ssd_mobilenet_v2_300": 106.0,
    "inception_v1": 90.0,
    "inception_v4_299": 700.0,
    "inception_resnet_v2_299": 753.0,
    "resnet50_v1_299": 484.0,
    "resnet50_v2_299": 557.0,
    "resnet152_v2_299": 1823.0,
    "densenet121": 380.0,
    "squeezenet": 55.0,
    "vgg16": 867.0,
    "vgg19": 1060.0,
    "deeplab_v3_mnv2_513": 394.0,
    "unet_mnv2_128": 27.7,
}


AI_HUB = "Qualcomm AI Hub perf.yaml, Samsung Galaxy S23 (Snapdragon 8 Gen 2), w8a8, TFLite runtime"

HEXAGON = (
    Figure("mobilenet_v2", "MobileNet-v2", 224, 0.420, f"{AI_HUB}, mobilenet_v2_quantized @ v0.20.0"),
    Figure(
        "mobilenet_v3_large",
        "MobileNet-v3-Large",
        224,
        0.342,
        f"{AI_HUB}, mobilenet_v3_large_quantized @ v0.20.0",
    ),
    Figure("resnet18_v1_5", "ResNet18", 224, 0.414, f"{AI_HUB}, resnet18 @ v0.28.0"),
    Figure("resnet50_v1_5", "ResNet50", 224, 0.786, f"{AI_HUB}, resnet50 @ v0.37.1", fit=True),
    Figure("resnet101_v1_5", "ResNet101", 224, 1.158, f"{AI_HUB}, resnet101 @ v0.37.1", fit=True),
    Figure("inception_v3_299", "Inception-v3", 299, 0.632, f"{AI_HUB}, inception_v3 @ v0.37.1"),
    Figure("inception_v1", "GoogLeNet", 224, 0.261, f"{AI_HUB}, googlenet @ v0.37.1"),
    Figure("squeezenet_1_1", "SqueezeNet-1.1", 224, 0.192, f"{AI_HUB}, squeezenet1_1 @ v0.37.1", fit=True),
    Figure("densenet121", "DenseNet-121", 224, 2.311, f"{AI_HUB}, densenet121 @ v0.28.0"),
)


# A third-party measurement of the USB Accelerator, held back from every fit: iwatake2222/EdgeTPU_Analysis
# (github, June 2019; Ops/model_generator_conv.py, Result.xlsx sheet "Ops_conv", host setting "10W", column
# "EdgeTPU", beside "EdgeTPU (USB2.0)"): a 2x2x3 uint8 input zero-padded to 128x128x3, then N convolutions
# of 32 7x7 filters ("same", ReLU), then a 1x1 conv of stride 128; mean time of 10 inferences through the
# Python BasicEngine, in ms. Its compiler (1.0) reports 5.01 MiB available for parameters (50 KiB a layer),
# and parameters off chip from 75 layers on (1.06 MiB; 11.85 MiB at 300).
CONV_STACK_SOURCE = "github.com/iwatake2222/EdgeTPU_Analysis Result.xlsx, Ops_conv, EdgeTPU (USB 3.0)"
CONV_STACK_MS = {
    10: 7.817,
    25: 20.131,
    50: 40.732,
    75: 61.602,
    100: 82.663,
    150: 124.426,
    200: 166.020,
    250: 207.570,
    300: 249.115,
}


def conv_stack_yaml(layers: int) -> str:
    """The measured conv stack of ``layers`` 7x7 convolutions as an hwsim layer file (see CONV_STACK_MS)."""
    convs = "".join(
        f"  - {{name: c{i}, op: conv2d, out_channels: 32, kernel: [7, 7], padding: same, activation: relu}}\n"
        for i in range(layers)
    )
    return (
        f"schema_version: 1\nname: conv_stack_{layers}\ninput: {{shape: [1, 2, 2, 3], dtype: int8}}\n"
        "layers:\n  - {name: pad, op: pad, padding: [63, 63, 63, 63]}\n"
        + convs
        + "  - {name: out, op: conv2d, out_channels: 1, kernel: [1, 1], stride: [128, 128], "
        "padding: valid}\n"
    )
