"""Strided NCHW convolution whose padded input is split into stride phases first.

In NCHW the innermost output axis is the width, so a stride-2 convolution reads its
input at every other element along the axis the CPU vectorizes: each vector load is a
gather. Splitting the padded input once into ``stride_h x stride_w`` phase planes,
``phases[n, c, py, px, y, x] = padded[n, c, y*sh + py, x*sw + px]``, turns every tap
``(ry, rx)`` into a contiguous read of plane ``(ry % sh, rx % sw)`` at offset
``(ry // sh, rx // sw)``. The split is one pass over the input, in the same kernel (it
replaces the padding stage TOPI has anyway), and the arithmetic is unchanged. On the
reference host (AVX-512), 64 tuning trials each took seesaw_share's stem from 201 us
(209 trials, TOPI's compute) to 75 us and its 256-channel stride-2 depthwise layer from
47 to 25 us (docs/performance.md).
"""

from __future__ import annotations


def conv2d_nchw_phased(data, kernel, strides, padding, groups: int, out_dtype: str | None = None):
    """TE compute of a grouped NCHW/OIHW convolution (dilation 1) through stride phases.

    Parameters
    ----------
    data : te.Tensor
        Input, (N, C, H, W).
    kernel : te.Tensor
        Weights, (O, C / groups, KH, KW).
    strides : (int, int)
    padding : (int, int, int, int)
        Top, left, bottom, right, in elements.
    groups : int
    out_dtype : str, optional
        Accumulation and output type (default: the input's).

    Returns
    -------
    te.Tensor
        Output, (N, O, OH, OW), equal to ``topi.nn.conv2d_nchw``'s.
    """
    from tvm import te, tirx

    n_, c_, h_, w_ = (int(v) for v in data.shape)
    o_, cg, kh, kw = (int(v) for v in kernel.shape)
    sh, sw = (int(s) for s in strides)
    pt, pl, pb, pr = (int(p) for p in padding)
    out_dtype = out_dtype or data.dtype
    oh, ow = (h_ + pt + pb - kh) // sh + 1, (w_ + pl + pr - kw) // sw + 1
    zero = tirx.const(0, data.dtype)

    def phase(n, c, py, px, y, x):
        iy, ix = y * sh + py - pt, x * sw + px - pl
        return tirx.if_then_else(tirx.all(iy >= 0, iy < h_, ix >= 0, ix < w_), data[n, c, iy, ix], zero)

    phases = te.compute((n_, c_, sh, sw, oh + (kh - 1) // sh, ow + (kw - 1) // sw), phase, name="phases")
    rc = te.reduce_axis((0, cg), name="rc")
    ry = te.reduce_axis((0, kh), name="ry")
    rx = te.reduce_axis((0, kw), name="rx")
    per_group = o_ // groups
    return te.compute(
        (n_, o_, oh, ow),
        lambda n, o, y, x: te.sum(
            phases[n, o // per_group * cg + rc, ry % sh, rx % sw, y + ry // sh, x + rx // sw].astype(out_dtype)
            * kernel[o, rc, ry, rx].astype(out_dtype),
            axis=[rc, ry, rx],
        ),
        name="conv2d_nchw",
        tag="conv2d_nchw",
    )


def is_phased(attrs) -> bool:
    """Whether a ``relax.nn.conv2d`` call with these attributes is lowered by :func:`conv2d_nchw_phased`."""
    return (
        (attrs.data_layout, attrs.kernel_layout, attrs.out_layout) == ("NCHW", "OIHW", "NCHW")
        and any(int(s) > 1 for s in attrs.strides)
        and all(int(d) == 1 for d in attrs.dilation)
    )


def legalize_conv2d(bb, call):
    """Legalize ``relax.nn.conv2d``: strided NCHW ones through phases, the others as TVM does."""
    import tvm

    a = call.attrs
    if not is_phased(a):
        return tvm.ir.Op.get("relax.nn.conv2d").get_attr("FLegalize")(bb, call)
    return bb.call_te(
        conv2d_nchw_phased, call.args[0], call.args[1], a.strides, a.padding, int(a.groups),
        a.out_dtype if a.out_dtype != "" else None, primfunc_name_hint="conv2d",
    )
