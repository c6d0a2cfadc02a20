"""The converters skl2onnx lacks or gets wrong for this package's models, registered with it once
before a conversion (tasks.onnx.export): onnxmltools' LightGBM and XGBoost converters, and our
own for the twins of tasks.onnx.twin (category text, one-hot of text, numeric imputation with
missing flags, a standardised target)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tasks.onnx.twin import MISSING_TEXT, CategoryText, NumberImputer, OneHotText, TargetScale

if TYPE_CHECKING:
    from collections.abc import Callable

    from tasks.types import Estimator

__all__ = ["register_converters"]

_registered = False


def register_converters() -> None:
    """onnxmltools' LightGBM and XGBoost converters and this module's, registered with skl2onnx
    once."""
    global _registered
    if _registered:
        return
    from lightgbm import LGBMClassifier, LGBMRegressor
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )
    from xgboost import XGBClassifier, XGBRegressor

    classifier = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    for cls, alias, convert, shape, options in (
        (LGBMClassifier, "LightGbmLGBMClassifier", convert_lightgbm,
         calculate_linear_classifier_output_shapes, classifier),
        (LGBMRegressor, "LightGbmLGBMRegressor", convert_lightgbm,
         calculate_linear_regressor_output_shapes, None),
        (XGBClassifier, "XGBoostXGBClassifier", convert_xgboost,
         calculate_linear_classifier_output_shapes, classifier),
        (XGBRegressor, "XGBoostXGBRegressor", convert_xgboost,
         calculate_linear_regressor_output_shapes, None),
    ):
        update_registered_converter(cls, alias, shape, convert, options=options)
    # skl2onnx's parser declares these outputs float whatever their input; a category's steps
    # take and give strings.
    from skl2onnx._parse import update_registered_parser
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import FunctionTransformer

    update_registered_parser(SimpleImputer, _same_type("SklearnImputer"))
    update_registered_parser(FunctionTransformer, _same_type("SklearnFunctionTransformer"))
    update_registered_converter(CategoryText, _TEXT, _text_shape, _convert_text,
                                parser=_text_parser)
    update_registered_converter(OneHotText, _ONEHOT, _onehot_shape, _convert_onehot)
    update_registered_converter(NumberImputer, _IMPUTE, _impute_shape, _convert_impute)
    update_registered_converter(TargetScale, _SCALE, _scale_shape, _convert_scale)
    _registered = True


_TEXT = "AutomlCategoryText"
_ONEHOT = "AutomlOneHotText"
_IMPUTE = "AutomlNumberImputer"
_SCALE = "AutomlTargetScale"


def _scale_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    operator.outputs[0].type = FloatTensorType([operator.inputs[0].get_first_dimension(), 1])


def _convert_scale(scope: Any, operator: Any, container: Any) -> None:
    from onnx import TensorProto

    model: TargetScale = operator.raw_operator
    scale, offset, scaled = (scope.get_unique_variable_name(f"target_{w}")
                             for w in ("scale", "offset", "scaled"))
    container.add_initializer(scale, TensorProto.FLOAT, [], [model.scale])
    container.add_initializer(offset, TensorProto.FLOAT, [], [model.offset])
    container.add_node("Mul", [operator.inputs[0].full_name, scale], [scaled],
                       name=scope.get_unique_operator_name("Mul"))
    container.add_node("Add", [scaled, offset], [operator.outputs[0].full_name],
                       name=scope.get_unique_operator_name("Add"))


def _impute_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    model: NumberImputer = operator.raw_operator
    width = len(model.statistics) + len(model.flagged)
    operator.outputs[0].type = FloatTensorType([operator.inputs[0].get_first_dimension(), width])


def _convert_impute(scope: Any, operator: Any, container: Any) -> None:
    from onnx import TensorProto

    model: NumberImputer = operator.raw_operator
    inputs = [v.full_name for v in operator.inputs]
    names = [scope.get_unique_variable_name(f"impute_{w}")
             for w in ("x", "nan", "stats", "filled", "idx", "picked", "flags")]
    x, nan, stats, filled, idx, picked, flags = names
    if len(inputs) == 1:
        container.add_node("Cast", inputs, [x], to=TensorProto.FLOAT,
                           name=scope.get_unique_operator_name("Cast"))
    else:
        merged = scope.get_unique_variable_name("impute_merged")
        container.add_node("Concat", inputs, [merged], axis=1,
                           name=scope.get_unique_operator_name("Concat"))
        container.add_node("Cast", [merged], [x], to=TensorProto.FLOAT,
                           name=scope.get_unique_operator_name("Cast"))
    container.add_node("IsNaN", [x], [nan], name=scope.get_unique_operator_name("IsNaN"))
    container.add_initializer(stats, TensorProto.FLOAT, [1, len(model.statistics)],
                              model.statistics)
    target = operator.outputs[0].full_name
    container.add_node("Where", [nan, stats, x], [filled if model.flagged else target],
                       name=scope.get_unique_operator_name("Where"))
    if not model.flagged:
        return
    container.add_initializer(idx, TensorProto.INT64, [len(model.flagged)], model.flagged)
    container.add_node("Gather", [nan, idx], [picked], axis=1,
                       name=scope.get_unique_operator_name("Gather"))
    container.add_node("Cast", [picked], [flags], to=TensorProto.FLOAT,
                       name=scope.get_unique_operator_name("Cast"))
    container.add_node("Concat", [filled, flags], [target], axis=1,
                       name=scope.get_unique_operator_name("Concat"))


def _onehot_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    width = sum(operator.raw_operator.widths)
    operator.outputs[0].type = FloatTensorType([operator.inputs[0].get_first_dimension(), width])


def _convert_onehot(scope: Any, operator: Any, container: Any) -> None:
    """Per column: level -> output column (LabelEncoder; unseen: one past the last), OneHot over
    one more column than the encoder has, that spare column cut off."""
    from onnx import TensorProto

    model: OneHotText = operator.raw_operator
    source = operator.inputs[0].full_name
    parts = []
    for i, (levels, width, unseen) in enumerate(
            zip(model.levels, model.widths, model.unseen, strict=True)):
        def name(what: str, i: int = i) -> str:
            return str(scope.get_unique_variable_name(f"onehot{i}_{what}"))

        column, index, codes, depth, values, wide, start, end, axes, cut = (
            name(w) for w in ("col", "i", "codes", "depth", "values", "wide", "start", "end",
                              "axes", "cut"))
        container.add_initializer(index, TensorProto.INT64, [1], [i])
        container.add_node("Gather", [source, index], [column], axis=1,
                           name=scope.get_unique_operator_name("Gather"))
        keys = list(levels)
        container.add_node("LabelEncoder", [column], [codes], op_domain="ai.onnx.ml",
                           op_version=2, keys_strings=keys,
                           values_int64s=[levels[k] for k in keys],
                           default_int64=width if unseen is None else unseen,
                           name=scope.get_unique_operator_name("Levels"))
        container.add_initializer(depth, TensorProto.INT64, [], [width + 1])
        container.add_initializer(values, TensorProto.FLOAT, [2], [0.0, 1.0])
        container.add_node("OneHot", [codes, depth, values], [wide], axis=-1,
                           name=scope.get_unique_operator_name("OneHot"))  # [N, 1, width + 1]
        container.add_initializer(start, TensorProto.INT64, [1], [0])
        container.add_initializer(end, TensorProto.INT64, [1], [width])
        container.add_initializer(axes, TensorProto.INT64, [1], [2])
        container.add_node("Slice", [wide, start, end, axes], [cut],
                           name=scope.get_unique_operator_name("Slice"))
        flat = name("flat")
        shape = name("shape")
        container.add_initializer(shape, TensorProto.INT64, [2], [-1, width])
        container.add_node("Reshape", [cut, shape], [flat],
                           name=scope.get_unique_operator_name("Reshape"))
        parts.append(flat)
    container.add_node("Concat", parts, [operator.outputs[0].full_name], axis=1,
                       name=scope.get_unique_operator_name("Concat"))


def _text_parser(scope: Any, model: Estimator, inputs: list[Any],
                 custom_parsers: object = None) -> list[Any]:
    from skl2onnx.common.data_types import StringTensorType

    operator = scope.declare_local_operator(_TEXT, model)
    operator.inputs = inputs
    operator.outputs.append(scope.declare_local_variable("text", StringTensorType()))
    return list(operator.outputs)


def _text_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import StringTensorType

    width = sum(v.type.shape[1] or 0 for v in operator.inputs) or None
    operator.outputs[0].type = StringTensorType([operator.inputs[0].get_first_dimension(), width])


def _convert_text(scope: Any, operator: Any, container: Any) -> None:
    """Strings pass; a number becomes Cast's text ("3" for 3.0), a missing one ""."""
    from onnx import TensorProto
    from skl2onnx.common.data_types import StringTensorType

    parts = []
    for variable in operator.inputs:
        if isinstance(variable.type, StringTensorType):
            parts.append(variable.full_name)
            continue
        name = variable.full_name
        text, nan = (scope.get_unique_variable_name(name + suffix) for suffix in ("_t", "_nan"))
        empty, out = (scope.get_unique_variable_name(name + suffix) for suffix in ("_e", "_s"))
        container.add_node("Cast", [name], [text], to=TensorProto.STRING,
                           name=scope.get_unique_operator_name("CastText"))
        container.add_node("IsNaN", [name], [nan], name=scope.get_unique_operator_name("IsNaN"))
        container.add_initializer(empty, TensorProto.STRING, [], [MISSING_TEXT.encode()])
        container.add_node("Where", [nan, empty, text], [out],
                           name=scope.get_unique_operator_name("Where"))
        parts.append(out)
    target = operator.outputs[0].full_name
    if len(parts) == 1:
        container.add_node("Identity", parts, [target],
                           name=scope.get_unique_operator_name("Id"))
    else:
        container.add_node("Concat", parts, [target], axis=1,
                           name=scope.get_unique_operator_name("Concat"))


def _same_type(alias: str) -> Callable[..., list[Any]]:
    def parse(scope: Any, model: Estimator, inputs: list[Any],
              custom_parsers: object = None) -> list[Any]:
        operator = scope.declare_local_operator(alias, model)
        operator.inputs = inputs
        operator.outputs.append(scope.declare_local_variable("same", type(inputs[0].type)()))
        return list(operator.outputs)
    return parse
