"""Keras definitions of the published-benchmark networks that ``keras.applications`` does not ship.

Each builder returns a functional ``keras.Model`` with a static batch of 1 (so the TFLite converter folds
shape ops) and random weights; latency does not depend on weight values. The layer structure follows the
paper or reference implementation named in each docstring; batch norms sit where the reference puts them
(the converter folds those that follow a convolution). Used by ``benchmarks/build_models.py`` only.
"""

from __future__ import annotations

import math

import tensorflow as tf

L = tf.keras.layers


def _conv(x, filters, kernel, stride=1, padding="same", activation="relu", dilation=1, bn=True, name=None):
    """Conv, batch norm, activation: the unit every reference below repeats."""
    x = L.Conv2D(
        filters, kernel, strides=stride, padding=padding, dilation_rate=dilation, use_bias=not bn, name=name
    )(x)
    if bn:
        x = L.BatchNormalization()(x)
    return L.Activation(activation)(x) if activation else x


def _input(size: int):
    return tf.keras.Input(shape=(size, size, 3), batch_size=1)


def _classifier(x, classes: int):
    """Global average pool, then a dense layer and softmax (the head of every classifier here)."""
    x = L.GlobalAveragePooling2D()(x)
    return L.Dense(classes, activation="softmax")(x)


# -------------------------------------------------------------------------------------------------------
# Inception v1 (GoogLeNet) and Inception v4, as in TF-slim's inception_v1.py / inception_v4.py
# -------------------------------------------------------------------------------------------------------


def _inception_v1_block(x, b0, b1, b2, b3):
    """One Inception-v1 module: 1x1 | 1x1-3x3 | 1x1-3x3 | maxpool-1x1 (slim uses 3x3 for the third)."""
    p0 = _conv(x, b0, 1)
    p1 = _conv(_conv(x, b1[0], 1), b1[1], 3)
    p2 = _conv(_conv(x, b2[0], 1), b2[1], 3)
    p3 = _conv(L.MaxPooling2D(3, 1, padding="same")(x), b3, 1)
    return L.Concatenate()([p0, p1, p2, p3])


def inception_v1(size: int = 224, classes: int = 1001) -> tf.keras.Model:
    """GoogLeNet (Szegedy et al. 2015) with TF-slim's branch widths; 6.6M parameters."""
    inp = _input(size)
    x = _conv(inp, 64, 7, 2)
    x = L.MaxPooling2D(3, 2, padding="same")(x)
    x = _conv(_conv(x, 64, 1), 192, 3)
    x = L.MaxPooling2D(3, 2, padding="same")(x)
    x = _inception_v1_block(x, 64, (96, 128), (16, 32), 32)
    x = _inception_v1_block(x, 128, (128, 192), (32, 96), 64)
    x = L.MaxPooling2D(3, 2, padding="same")(x)
    for spec in (
        (192, (96, 208), (16, 48), 64),
        (160, (112, 224), (24, 64), 64),
        (128, (128, 256), (24, 64), 64),
        (112, (144, 288), (32, 64), 64),
        (256, (160, 320), (32, 128), 128),
    ):
        x = _inception_v1_block(x, *spec)
    x = L.MaxPooling2D(2, 2, padding="same")(x)
    x = _inception_v1_block(x, 256, (160, 320), (32, 128), 128)
    x = _inception_v1_block(x, 384, (192, 384), (48, 128), 128)
    return tf.keras.Model(inp, _classifier(x, classes), name="inception_v1")


def _inception_a(x):
    p0 = _conv(x, 96, 1)
    p1 = _conv(_conv(x, 64, 1), 96, 3)
    p2 = _conv(_conv(_conv(x, 64, 1), 96, 3), 96, 3)
    p3 = _conv(L.AveragePooling2D(3, 1, padding="same")(x), 96, 1)
    return L.Concatenate()([p0, p1, p2, p3])


def _inception_b(x):
    p0 = _conv(x, 384, 1)
    p1 = _conv(_conv(_conv(x, 192, 1), 224, (1, 7)), 256, (7, 1))
    p2 = _conv(x, 192, 1)
    for filters, kernel in ((192, (7, 1)), (224, (1, 7)), (224, (7, 1)), (256, (1, 7))):
        p2 = _conv(p2, filters, kernel)
    p3 = _conv(L.AveragePooling2D(3, 1, padding="same")(x), 128, 1)
    return L.Concatenate()([p0, p1, p2, p3])


def _inception_c(x):
    p0 = _conv(x, 256, 1)
    p1 = _conv(x, 384, 1)
    p1 = L.Concatenate()([_conv(p1, 256, (1, 3)), _conv(p1, 256, (3, 1))])
    p2 = _conv(_conv(_conv(x, 384, 1), 448, (3, 1)), 512, (1, 3))
    p2 = L.Concatenate()([_conv(p2, 256, (1, 3)), _conv(p2, 256, (3, 1))])
    p3 = _conv(L.AveragePooling2D(3, 1, padding="same")(x), 256, 1)
    return L.Concatenate()([p0, p1, p2, p3])


def inception_v4(size: int = 299, classes: int = 1001) -> tf.keras.Model:
    """Inception-v4 (Szegedy et al. 2017, Figures 3-9) as in TF-slim; 42.7M parameters."""
    inp = _input(size)
    x = _conv(inp, 32, 3, 2, "valid")
    x = _conv(x, 32, 3, padding="valid")
    x = _conv(x, 64, 3)
    x = L.Concatenate()([L.MaxPooling2D(3, 2)(x), _conv(x, 96, 3, 2, "valid")])
    a = _conv(_conv(x, 64, 1), 96, 3, padding="valid")
    b = _conv(_conv(_conv(_conv(x, 64, 1), 64, (1, 7)), 64, (7, 1)), 96, 3, padding="valid")
    x = L.Concatenate()([a, b])
    x = L.Concatenate()([_conv(x, 192, 3, 2, "valid"), L.MaxPooling2D(3, 2)(x)])
    for _ in range(4):
        x = _inception_a(x)
    x = L.Concatenate()(
        [
            _conv(x, 384, 3, 2, "valid"),
            _conv(_conv(_conv(x, 192, 1), 224, 3), 256, 3, 2, "valid"),
            L.MaxPooling2D(3, 2)(x),
        ]
    )
    for _ in range(7):
        x = _inception_b(x)
    a = _conv(_conv(x, 192, 1), 192, 3, 2, "valid")
    b = _conv(_conv(_conv(_conv(x, 256, 1), 256, (1, 7)), 320, (7, 1)), 320, 3, 2, "valid")
    x = L.Concatenate()([a, b, L.MaxPooling2D(3, 2)(x)])
    for _ in range(3):
        x = _inception_c(x)
    return tf.keras.Model(inp, _classifier(x, classes), name="inception_v4")


# -------------------------------------------------------------------------------------------------------
# SqueezeNet 1.0 (Iandola et al. 2016, Table 1)
# -------------------------------------------------------------------------------------------------------


def _fire(x, squeeze, expand):
    s = _conv(x, squeeze, 1, bn=False)
    return L.Concatenate()([_conv(s, expand, 1, bn=False), _conv(s, expand, 3, bn=False)])


def squeezenet(size: int = 224, classes: int = 1000, version: str = "1.0") -> tf.keras.Model:
    """SqueezeNet v1.0 (conv1 96 7x7/2, pools after fire4 and fire8; 1.25M parameters) or v1.1 (conv1 64
    3x3/2, pools after fire3 and fire5; 1.24M parameters, 2.4x fewer MACs), as in the authors' release."""
    inp = _input(size)
    fires = ((16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256), (64, 256))
    pools_after = (3, 7) if version == "1.0" else (2, 4)
    x = (
        _conv(inp, 96, 7, 2, "valid", bn=False)
        if version == "1.0"
        else _conv(inp, 64, 3, 2, "valid", bn=False)
    )
    x = L.MaxPooling2D(3, 2)(x)
    for i, (squeeze, expand) in enumerate(fires, 1):
        x = _fire(x, squeeze, expand)
        if i in pools_after:
            x = L.MaxPooling2D(3, 2)(x)
    x = _conv(x, classes, 1, bn=False)
    x = L.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inp, L.Softmax()(x), name="squeezenet")


# -------------------------------------------------------------------------------------------------------
# ResNet v1.5 (torchvision's ResNet-18/50/101: the stride of a bottleneck on its 3x3 conv)
# -------------------------------------------------------------------------------------------------------


def resnet_v1_5(depth: int, size: int = 224, classes: int = 1000) -> tf.keras.Model:
    """ResNet-18/34 (basic blocks) or -50/101/152 (bottlenecks) as torchvision builds them (He et al. 2016,
    Table 1, with the downsampling stride on the 3x3 convolution of a bottleneck)."""
    blocks = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}[
        depth
    ]
    bottleneck = depth >= 50
    inp = _input(size)
    x = _conv(L.ZeroPadding2D(3)(inp), 64, 7, 2, "valid")
    x = L.MaxPooling2D(3, 2)(L.ZeroPadding2D(1)(x))
    for stage, n in enumerate(blocks):
        width = 64 * 2**stage
        out = width * 4 if bottleneck else width
        for i in range(n):
            stride = 2 if i == 0 and stage > 0 else 1
            shortcut = x
            if stride != 1 or x.shape[-1] != out:
                shortcut = _conv(x, out, 1, stride, activation=None)
            if bottleneck:
                y = _conv(_conv(x, width, 1), width, 3, stride)
                y = _conv(y, out, 1, activation=None)
            else:
                y = _conv(_conv(x, width, 3, stride), width, 3, activation=None)
            x = L.Activation("relu")(L.Add()([shortcut, y]))
    return tf.keras.Model(inp, _classifier(x, classes), name=f"resnet{depth}_v1_5")


# -------------------------------------------------------------------------------------------------------
# EfficientNet-EdgeTPU S/M/L (Gupta & Tan 2019; tensorflow/tpu models/official/efficientnet/edgetpu)
# -------------------------------------------------------------------------------------------------------

EDGETPU_BLOCKS = (  # repeats, kernel, stride, expand ratio, input, output, fused (3x3 expansion conv), skip
    (1, 3, 1, 4, 24, 24, True, False),
    (2, 3, 2, 8, 24, 32, True, True),
    (4, 3, 2, 8, 32, 48, True, True),
    (5, 5, 2, 8, 48, 96, False, True),
    (4, 5, 1, 8, 96, 144, False, True),
    (2, 5, 2, 8, 144, 192, False, True),
)
EDGETPU_SCALES = {"s": (1.0, 1.0, 224), "m": (1.0, 1.1, 240), "l": (1.2, 1.4, 300)}


def _round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """EfficientNet's channel rounding: scale, round to a multiple of 8, never more than 10% down."""
    scaled = filters * width
    new = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * scaled else new


def efficientnet_edgetpu(variant: str, classes: int = 1001) -> tf.keras.Model:
    """EfficientNet-EdgeTPU-S/M/L: MBConv blocks (fused in the first three stages), ReLU, no
    squeeze-excite."""
    width, depth, size = EDGETPU_SCALES[variant]
    inp = _input(size)
    x = _conv(inp, _round_filters(32, width), 3, 2)
    for repeats, kernel, stride, expand, cin, cout, fused, skip in EDGETPU_BLOCKS:
        cin, cout = _round_filters(cin, width), _round_filters(cout, width)
        for r in range(math.ceil(depth * repeats)):
            s, block_in = (stride, cin) if r == 0 else (1, cout)
            y = x
            if fused:
                y = _conv(y, block_in * expand, kernel, s)
            else:
                y = _conv(y, block_in * expand, 1)
                y = L.DepthwiseConv2D(kernel, s, padding="same", use_bias=False)(y)
                y = L.Activation("relu")(L.BatchNormalization()(y))
            y = _conv(y, cout, 1, activation=None)
            x = L.Add()([x, y]) if skip and s == 1 and x.shape[-1] == cout else y
    x = _conv(x, _round_filters(1280, width), 1)
    return tf.keras.Model(inp, _classifier(x, classes), name=f"efficientnet_edgetpu_{variant}")


# -------------------------------------------------------------------------------------------------------
# Detection and segmentation on MobileNet backbones (TF Object Detection API, DeepLab, TF segmentation
# tutorial)
# -------------------------------------------------------------------------------------------------------


def _ssd_head(features: list, anchors: list[int], classes: int):
    """SSD's 1x1 box and class predictors per feature map, reshaped and concatenated, scores through
    sigmoid."""
    boxes, scores = [], []
    for f, a in zip(features, anchors, strict=True):
        boxes.append(L.Reshape((-1, 4))(L.Conv2D(a * 4, 1)(f)))
        scores.append(L.Reshape((-1, classes))(L.Conv2D(a * classes, 1)(f)))
    return L.Concatenate(axis=1)(boxes), L.Activation("sigmoid")(L.Concatenate(axis=1)(scores))


def _ssd_extras(x, depths: tuple[int, ...]):
    """The extra SSD feature maps: 1x1 to half depth, then 3x3 stride 2 (TF OD API feature_map_generators)."""
    maps = []
    for depth in depths:
        x = _conv(_conv(x, depth // 2, 1, activation="relu6"), depth, 3, 2, activation="relu6")
        maps.append(x)
    return maps


def _mobilenet_v1_same(x) -> list:
    """MobileNet v1 with TF-slim's SAME padding (Keras' pads stride-2 layers by one pixel and gives 18x18
    instead of 19x19 at 300x300); returns the outputs of pointwise layers 11 and 13."""
    x = _conv(x, 32, 3, 2, activation="relu6")
    taps = []
    for i, (filters, stride) in enumerate(
        (
            (64, 1),
            (128, 2),
            (128, 1),
            (256, 2),
            (256, 1),
            (512, 2),
            (512, 1),
            (512, 1),
            (512, 1),
            (512, 1),
            (512, 1),
            (1024, 2),
            (1024, 1),
        ),
        1,
    ):
        x = L.DepthwiseConv2D(3, stride, padding="same", use_bias=False)(x)
        x = L.Activation("relu6")(L.BatchNormalization()(x))
        x = _conv(x, filters, 1, activation="relu6")
        if i in (11, 13):
            taps.append(x)
    return taps


def ssd_mobilenet(version: int, size: int = 300, classes: int = 91) -> tf.keras.Model:
    """SSD MobileNet v1/v2 (COCO, 1917 anchors at 300x300) without the post-processing op.

    Feature maps as in the TF Object Detection API: v1 taps conv_pw_11 (19x19) and conv_pw_13 (10x10),
    v2 taps block_13_expand_relu (19x19) and the last 1280-channel conv (10x10); both add four maps of
    depth 512, 256, 256, 128; 3 anchors on the first map and 6 on the others; 90 classes + background.
    """
    inp = _input(size)
    if version == 1:
        taps = _mobilenet_v1_same(inp)
    else:
        base = tf.keras.applications.MobileNetV2(input_tensor=inp, include_top=False, weights=None)
        taps = [base.get_layer("block_13_expand_relu").output, base.get_layer("out_relu").output]
    features = taps + _ssd_extras(taps[-1], (512, 256, 256, 128))
    boxes, scores = _ssd_head(features, [3, 6, 6, 6, 6, 6], classes)
    return tf.keras.Model(inp, [boxes, scores], name=f"ssd_mobilenet_v{version}")


def deeplab_v3_mobilenet_v2(size: int = 513, classes: int = 21) -> tf.keras.Model:
    """DeepLab v3 on MobileNetV2 (output stride 16), op for op as Coral's deeplabv3_mnv2_pascal_quant.tflite
    (google-coral/edgetpu test_data): the last stride-2 stage at stride 1, its later depthwise convolutions at
    dilation 2 (TF's mobilenet ``output_stride`` rule: the layer that would have strided keeps rate 1), an
    image-pooling branch (33x33 average pool, 1x1 conv, bilinear resize back) beside a 1x1 branch of depth
    256, a 1x1 projection, 1x1 logits, DeepLab's resize of the logits to their own size, the bilinear resize
    to the input and the arg max; every resize with align_corners, as TF1 DeepLab exports them."""
    inp = _input(size)
    x = _conv(inp, 32, 3, 2, activation="relu6")
    dilation = 1
    for t, c, n, s in (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ):
        for i in range(n):
            stride, rate = (s if i == 0 else 1), dilation
            if c == 160 and i == 0:
                stride, dilation = 1, 2
            y = x
            if t != 1:
                y = _conv(y, x.shape[-1] * t, 1, activation="relu6")
            y = L.DepthwiseConv2D(3, stride, padding="same", dilation_rate=rate, use_bias=False)(y)
            y = L.Activation("relu6")(L.BatchNormalization()(y))
            y = _conv(y, c, 1, activation=None)
            x = L.Add()([x, y]) if i > 0 else y
    h, w = x.shape[1], x.shape[2]
    pool = L.AveragePooling2D((h, w))(x)
    pool = _Resize((h, w))(_conv(pool, 256, 1))
    x = L.Concatenate()([pool, _conv(x, 256, 1)])
    x = _conv(x, 256, 1)
    x = L.Conv2D(classes, 1)(x)
    x = _Resize((size, size))(_Resize((h, w))(x))
    return tf.keras.Model(inp, _ArgMax()(x), name="deeplab_v3_mnv2")


class _Resize(L.Layer):
    """tf.compat.v1.image.resize_bilinear with align_corners, one TFLite RESIZE_BILINEAR op."""

    def __init__(self, size, **kwargs):
        super().__init__(**kwargs)
        self.size = size

    def call(self, x):
        return tf.compat.v1.image.resize_bilinear(x, self.size, align_corners=True)


class _ArgMax(L.Layer):
    """tf.math.argmax over channels, which converts to one TFLite ARG_MAX op."""

    def call(self, x):
        return tf.math.argmax(x, axis=-1, output_type=tf.int32)


def unet_mobilenet_v2(size: int = 128, classes: int = 3) -> tf.keras.Model:
    """U-Net with a MobileNetV2 encoder and pix2pix upsampling blocks (TensorFlow's image segmentation
    tutorial): skips at 64, 32, 16, 8 and 4 pixels, transposed 3x3 convolutions of 512, 256, 128, 64."""
    inp = _input(size)
    base = tf.keras.applications.MobileNetV2(input_tensor=inp, include_top=False, weights=None)
    names = [
        "block_1_expand_relu",
        "block_3_expand_relu",
        "block_6_expand_relu",
        "block_13_expand_relu",
        "block_16_project",
    ]
    skips = [base.get_layer(n).output for n in names]
    x = skips[-1]
    for filters, skip in zip((512, 256, 128, 64), reversed(skips[:-1]), strict=True):
        x = L.Conv2DTranspose(filters, 3, strides=2, padding="same", use_bias=False)(x)
        x = L.Activation("relu")(L.BatchNormalization()(x))
        x = L.Concatenate()([x, skip])
    x = L.Conv2DTranspose(classes, 3, strides=2, padding="same")(x)
    return tf.keras.Model(inp, x, name="unet_mnv2")
