"""LLVM intrinsics the kernels are built from: explicit vector operations that numba does not
emit by itself, each spelling out exactly what the scalar loop computes (same IEEE
operations, same order), so that every fast path stays bit-exact.
"""
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic


def vector_add(lanes):
    """An intrinsic ``f(dst, i, src, j)``: ``dst[i:i+lanes] += src[j:j+lanes]`` as one
    vector load / convert / add / store (unaligned), on contiguous 1-d arrays.

    numba does not vectorise short row adds by itself; this spells out what the
    scalar loop computes lane by lane. A floating ``dst``: integer weights are
    converted exactly (``sitofp``), floating weights must already have its type, and
    each lane is one IEEE add in that type. An integer ``dst`` (exact integer
    sums): integer weights, sign-extended, integer adds. No bounds checks: callers
    guarantee the ranges.
    """

    @intrinsic
    def vadd(typingctx, dst, di, src, si):
        if not (isinstance(dst, types.Array) and isinstance(src, types.Array)
                and dst.layout == "C" and src.layout == "C"
                and isinstance(dst.dtype, (types.Float, types.Integer)) and isinstance(di, types.Integer)
                and isinstance(si, types.Integer)):
            return None
        if isinstance(dst.dtype, types.Integer):
            if not (isinstance(src.dtype, types.Integer) and src.dtype.signed
                    and src.dtype.bitwidth <= dst.dtype.bitwidth):
                return None
        elif not (isinstance(src.dtype, types.Integer) or src.dtype == dst.dtype):
            return None

        def codegen(context, builder, sig, args):
            dty, dity, sty, sity = sig.args
            darr = context.make_array(dty)(context, builder, args[0])
            sarr = context.make_array(sty)(context, builder, args[2])
            i = context.cast(builder, args[1], dity, types.intp)
            j = context.cast(builder, args[3], sity, types.intp)
            dvec = ir.VectorType(context.get_value_type(dty.dtype), lanes)
            svec = ir.VectorType(context.get_value_type(sty.dtype), lanes)
            dptr = builder.bitcast(builder.gep(darr.data, [i]), dvec.as_pointer())
            sptr = builder.bitcast(builder.gep(sarr.data, [j]), svec.as_pointer())
            x = builder.load(sptr, align=1)
            old = builder.load(dptr, align=1)
            if isinstance(dty.dtype, types.Integer):
                if sty.dtype.bitwidth < dty.dtype.bitwidth:
                    x = builder.sext(x, dvec)
                new = builder.add(old, x)
            else:
                if isinstance(sty.dtype, types.Integer):
                    x = builder.sitofp(x, dvec) if sty.dtype.signed else builder.uitofp(x, dvec)
                new = builder.fadd(old, x)
            builder.store(new, dptr, align=1)
            return context.get_dummy_value()

        return types.void(dst, di, src, si), codegen

    return vadd


@intrinsic
def cast_like(typingctx, x, like):
    """``x`` converted to the type of the scalar ``like`` (exact for an int16 drive
    into float32 or float64 state; numba's own promotion would give float64)."""
    if not (isinstance(x, types.Number) and isinstance(like, types.Number)):
        return None

    def codegen(context, builder, sig, args):
        return context.cast(builder, args[0], sig.args[0], sig.args[1])

    return like(x, like), codegen


@intrinsic
def mask64(typingctx, arr, i):
    """Bit m set where ``arr.flat[i + m] != 0``, m < 64, for a C-contiguous array of
    1-byte items (one unaligned 64-byte vector load and compare; no bounds check)."""
    if not (isinstance(arr, types.Array) and arr.layout == "C" and isinstance(i, types.Integer)
            and (isinstance(arr.dtype, types.Boolean) or getattr(arr.dtype, "bitwidth", 0) == 8)):
        return None

    def codegen(context, builder, sig, args):
        aty, ity = sig.args
        data = context.make_array(aty)(context, builder, args[0]).data
        j = context.cast(builder, args[1], ity, types.intp)
        vec = ir.VectorType(ir.IntType(8), 64)
        x = builder.load(builder.bitcast(builder.gep(data, [j]), vec.as_pointer()), align=1)
        nz = builder.icmp_unsigned("!=", x, ir.Constant(vec, None))
        return builder.bitcast(nz, ir.IntType(64))

    return types.uint64(arr, i), codegen


#: neurons per vector step of :func:`lif64`: one AVX2 register of float32. A 64-lane vector
#: takes 8 registers per value, and with the splatted parameters the step no longer fits
#: the 16 registers: LLVM spills to the stack inside the neuron pass
LIF_LANES = 8


@intrinsic
def lif64(typingctx, buf, d, v, i, alpha, ioff, thr, fire_thr, vreset, subtract):
    """Neurons ``i .. i+63`` of :func:`emu.engine.kernels._lif_float` with parameters shared by all (a
    uniform population) as vector operations, :data:`LIF_LANES` neurons at a time, their drives
    ``buf[d .. d+63]`` cleared; returns the bit mask of the ones that fired (bit m: neuron
    i+m), straight from the vector comparisons. The same IEEE operations in the same
    order as the scalar function. No bounds checks."""
    if not (isinstance(buf, types.Array) and isinstance(v, types.Array) and buf.layout == "C"
            and v.layout == "C" and isinstance(v.dtype, types.Float)
            and (isinstance(buf.dtype, types.Integer) or buf.dtype == v.dtype)
            and all(isinstance(x, types.Integer) for x in (d, i))
            and all(x == v.dtype for x in (alpha, ioff, thr, fire_thr, vreset))
            and isinstance(subtract, types.Boolean)):
        return None

    def codegen(context, builder, sig, args):
        bty, dty, vty, ity = sig.args[:4]
        bufs, d_, vs, i_, al, io, th, fth, vr, sub = args
        lanes = LIF_LANES
        fvec = ir.VectorType(context.get_value_type(vty.dtype), lanes)
        bvec = ir.VectorType(context.get_value_type(bty.dtype), lanes)
        bdata = context.make_array(bty)(context, builder, bufs).data
        vdata = context.make_array(vty)(context, builder, vs).data
        d0 = context.cast(builder, d_, dty, types.intp)
        i0 = context.cast(builder, i_, ity, types.intp)

        def splat(x):
            one = builder.insert_element(ir.Constant(fvec, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
            return builder.shuffle_vector(one, ir.Constant(fvec, ir.Undefined),
                                          ir.Constant(ir.VectorType(ir.IntType(32), lanes), None))

        mask = ir.Constant(ir.IntType(64), 0)
        for q in range(64 // lanes):
            off = ir.Constant(d0.type, q * lanes)
            bptr = builder.bitcast(builder.gep(bdata, [builder.add(d0, off)]), bvec.as_pointer())
            vptr = builder.bitcast(builder.gep(vdata, [builder.add(i0, off)]), fvec.as_pointer())
            drive = builder.load(bptr, align=1)
            builder.store(ir.Constant(bvec, None), bptr, align=1)
            if isinstance(bty.dtype, types.Integer):
                drive = builder.sitofp(drive, fvec)
            vi = builder.fadd(builder.fadd(builder.fmul(splat(al), builder.load(vptr, align=1)), drive), splat(io))
            fire = builder.fcmp_ordered(">", vi, splat(fth))
            reset = builder.select(sub, builder.fsub(vi, splat(th)), splat(vr))
            builder.store(builder.select(fire, reset, vi), vptr, align=1)
            bits = builder.zext(builder.bitcast(fire, ir.IntType(lanes)), ir.IntType(64))
            mask = builder.or_(mask, builder.shl(bits, ir.Constant(ir.IntType(64), q * lanes)))
        return mask

    return types.uint64(buf, d, v, i, alpha, ioff, thr, fire_thr, vreset, subtract), codegen


@intrinsic
def popcount(typingctx, x):
    """The number of set bits of a uint64, as int64 (LLVM's ctpop: one instruction)."""
    if x != types.uint64:
        return None

    def codegen(context, builder, sig, args):
        fn = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)])
        return builder.zext(builder.call(fn, [args[0]]), ir.IntType(64))

    return types.int64(x), codegen


vadd16 = vector_add(16)
vadd8 = vector_add(8)
vadd4 = vector_add(4)


@intrinsic
def prefetch(typingctx, arr, i):
    """A hint only: start bringing the cache line of ``arr.flat[i]`` towards L1 (LLVM's
    prefetch, read, high locality); no bounds check and no effect on any value."""
    if not (isinstance(arr, types.Array) and arr.layout == "C" and isinstance(i, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        aty, ity = sig.args
        data = context.make_array(aty)(context, builder, args[0]).data
        j = context.cast(builder, args[1], ity, types.intp)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = builder.module.declare_intrinsic("llvm.prefetch", [i8p], fnty)
        builder.call(fn, [builder.bitcast(builder.gep(data, [j]), i8p), ir.Constant(i32, 0), ir.Constant(i32, 3),
                          ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(arr, i), codegen


@intrinsic
def take_next(typingctx, counter):
    """``counter[0] += 1`` as one atomic operation, returning the value before: a counter
    that threads share without a lock, each value handed to exactly one of them."""
    if not (isinstance(counter, types.Array) and counter.layout == "C" and counter.dtype == types.int64):
        return None

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        return builder.atomic_rmw("add", data, ir.Constant(ir.IntType(64), 1), "monotonic")

    return types.int64(counter), codegen
