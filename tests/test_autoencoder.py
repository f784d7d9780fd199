"""The autoencoder: shapes, safe-mode files, learning to reconstruct, the KL term, and Stable Diffusion's VAE
format checked against diffusers' own AutoencoderKL (its real code with random weights, offline)."""

import json
import os
import zipfile

import keras
import numpy as np
import pytest
from helpers import needs_extra, tiny

from denoiser import AutoencoderConfig, ConfigError, build_autoencoder, build_unet, load_autoencoder
from denoiser.autoencoder import from_diffusers, loading
from denoiser.autoencoder.blocks import kl_divergence
from denoiser.autoencoder.config import parameter_count
from denoiser.autoencoder.from_diffusers import WEIGHTS_FILE, config_from_diffusers, diffusers_names, torch_layout_shape
from denoiser.autoencoder.model import Autoencoder, AutoencoderError
from denoiser.data.shapes import make_shapes
from denoiser.rundir import CheckpointError
from denoiser.serialization import load_model

# A few-thousand-parameter autoencoder of 3-channel images, f = 4 (two halvings).
TINY = AutoencoderConfig(widths=[8, 8, 16], layers_per_block=1, latent_channels=4, norm_groups=4)


def images(count: int, size: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (count, size, size, 3)).astype("float32")


# ================================================================================== shapes and config
def test_encode_gives_latent_means_at_a_quarter_of_the_side_and_decode_gives_images_back():
    model = build_autoencoder(TINY)
    latents = model.encode(images(3))
    assert TINY.downsampling == 4 and latents.shape == (3, 4, 4, 4) and latents.dtype == np.float32
    assert model.encoder(images(3)).shape == (3, 4, 4, 8)  # the moments: means, then log-variances
    decoded = model.decode(latents, batch_size=2)  # two batches: 2 latents, then 1
    assert decoded.shape == (3, 16, 16, 3)
    # The decoder network's images, clipped to [-1, 1]: image for image and in order, whatever the batches.
    np.testing.assert_allclose(decoded, np.clip(keras.ops.convert_to_numpy(model.decoder(latents)), -1, 1), atol=1e-5)
    assert not np.allclose(decoded[0], decoded[1])  # each latent decodes to its own image
    assert model(images(3, size=32)).shape == (3, 32, 32, 3)  # any side that f divides


def test_encode_and_decode_refuse_arrays_that_do_not_fit_in_one_line():
    model = build_autoencoder(TINY)
    with pytest.raises(AutoencoderError, match=r"multiples of 4") as error:
        model.encode(images(1, size=18))
    assert "\n" not in str(error.value)
    with pytest.raises(AutoencoderError, match=r"\(N, H, W, 4\)"):
        model.decode(np.zeros((1, 4, 4, 3)))


def test_a_config_whose_norm_groups_do_not_divide_the_widths_is_refused():
    with pytest.raises(ConfigError, match="autoencoder.norm_groups=3 must divide every width"):
        AutoencoderConfig(widths=[8, 16], norm_groups=3)
    with pytest.raises(ConfigError, match="autoencoder.widths"):
        AutoencoderConfig(widths=[])


def test_the_defaults_are_stable_diffusions_vae():
    config = AutoencoderConfig()
    assert config.downsampling == 8 and config.latent_channels == 4 and config.scaling_factor == 0.18215


# ================================================================================== files
def test_a_keras_file_loads_in_safe_mode_with_the_same_outputs(tmp_path):
    model = build_autoencoder(TINY)
    x = images(2)
    path = str(tmp_path / "autoencoder.keras")
    model.save(path)
    for loaded in (keras.saving.load_model(path, safe_mode=True), load_autoencoder(path)):
        assert loaded.config == TINY and loaded.scaling_factor == TINY.scaling_factor
        np.testing.assert_array_equal(loaded.encode(x), model.encode(x))
        np.testing.assert_array_equal(loaded.decode(model.encode(x)), model.decode(model.encode(x)))


def test_load_autoencoder_refuses_a_unet_file_and_a_path_that_is_nothing(tmp_path):
    path = str(tmp_path / "unet.keras")
    build_unet(tiny()).save(path)
    with pytest.raises(AutoencoderError, match="holds a DenoiserUNet, not an Autoencoder"):
        load_autoencoder(path)
    with pytest.raises(AutoencoderError, match="holds no autoencoder in diffusers' layout"):
        load_autoencoder(tmp_path)
    with pytest.raises(AutoencoderError, match="No autoencoder at"):
        load_autoencoder(str(tmp_path / "missing" / "deeper" / "path"))


# ================================================================================== training
def test_a_few_hundred_steps_of_fit_reduce_the_reconstruction_error():
    """How an autoencoder trains: fit(images, images) with a reconstruction loss; the KL term adds itself.

    The 200 steps take a few seconds; most of this test's time is TensorFlow tracing the training step."""
    keras.utils.set_random_seed(0)
    config = AutoencoderConfig(widths=[8, 16], layers_per_block=1, latent_channels=4, norm_groups=4, kl_weight=1e-3)
    model = build_autoencoder(config)
    shapes, _, _ = make_shapes(64, image_size=8, seed=0)
    x = shapes.astype("float32") / 127.5 - 1.0

    def reconstruction_error():
        return float(np.mean(np.square(model.decode(model.encode(x)) - x)))

    before = reconstruction_error()
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
    model.optimizer.build(model.trainable_variables)  # made inside the first traced step, TF would trace it twice
    repeated = np.tile(x, (50, 1, 1, 1))  # 3,200 images: 200 steps of 16
    history = model.fit(repeated, repeated, batch_size=16, epochs=1, verbose=0)
    after = reconstruction_error()
    assert np.isfinite(history.history["loss"]).all()
    assert after < 0.25 * before, (before, after)


def test_the_kl_term_is_zero_for_the_standard_normal_and_finite_however_narrow_the_encoder():
    zeros = np.zeros((2, 4, 4, 4), "float32")
    assert float(kl_divergence(zeros, zeros)) == 0.0
    assert float(kl_divergence(zeros + 1.0, zeros)) == pytest.approx(0.5)  # 0.5 * mean^2
    model = build_autoencoder(TINY)
    layer = model.get_layer("latent_distribution")
    moments = np.concatenate([zeros, np.full_like(zeros, -1e4)], axis=-1)  # log-variance far below its clip
    latents = layer(moments, training=True)
    (kl,) = layer.losses
    assert np.isfinite(float(kl)) and float(kl) == pytest.approx(TINY.kl_weight * 0.5 * (np.exp(-30) - 1 + 30))
    # std exp(-15) = 3.1e-7: the latents are the means to within 30 standard deviations (1e-6 was only 3.3 of them,
    # which one of 64 unseeded draws passed about once in 6 runs)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(latents), 0.0, atol=1e-5)
    model(images(2), training=True)
    assert len(model.losses) == 1 and np.isfinite(float(model.losses[0]))
    model(images(2))
    assert not model.losses  # the KL term is a training loss only


# ================================================================================== Stable Diffusion's VAE format
# Two small AutoencoderKLs: SD 1.x/2.x's layout, and SD3's (no quant convs, 16 latent channels, a shift).
DIFFUSERS_CONFIGS = {
    "sd": dict(block_out_channels=(32, 64), latent_channels=4, norm_num_groups=16),
    "sd3": dict(
        block_out_channels=(16, 32),
        latent_channels=16,
        norm_num_groups=8,
        use_quant_conv=False,
        use_post_quant_conv=False,
        scaling_factor=1.5305,
        shift_factor=0.0609,
    ),
}


def random_diffusers_vae(folder: str, seed: int = 0, **settings):
    """A diffusers AutoencoderKL with random weights (its norms too), saved to `folder`; returns it."""
    needs_extra("torch")
    diffusers = pytest.importorskip("diffusers")
    import torch

    torch.manual_seed(seed)
    levels = len(settings["block_out_channels"])
    vae = diffusers.AutoencoderKL(
        down_block_types=["DownEncoderBlock2D"] * levels,
        up_block_types=["UpDecoderBlock2D"] * levels,
        layers_per_block=1,
        sample_size=32,
        **settings,
    ).eval()
    with torch.no_grad():
        for name, parameter in vae.named_parameters():
            if "norm" in name:  # diffusers starts them at 1 and 0, which would hide a swapped weight and bias
                parameter.add_(0.2 * torch.randn_like(parameter))
    vae.save_pretrained(folder)
    return vae


def diffusers_outputs(vae, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """diffusers' encoder means and decoder output of x, channels last."""
    import torch

    with torch.no_grad():
        means = vae.encode(torch.from_numpy(x).permute(0, 3, 1, 2)).latent_dist.mean
        decoded = vae.decode(means).sample
    return means.permute(0, 2, 3, 1).numpy(), decoded.permute(0, 2, 3, 1).numpy()


@pytest.fixture(scope="module", params=sorted(DIFFUSERS_CONFIGS))
def diffusers_vae(request, tmp_path_factory):
    """(the diffusers AutoencoderKL, the folder it was saved to, its outputs for `images(2, 32)`)."""
    folder = str(tmp_path_factory.mktemp(f"vae_{request.param}"))
    vae = random_diffusers_vae(folder, **DIFFUSERS_CONFIGS[request.param])
    return vae, folder, diffusers_outputs(vae, images(2, size=32))


def test_the_loaded_vae_encodes_and_decodes_as_diffusers_does(diffusers_vae):
    vae, folder, (means, decoded) = diffusers_vae
    model = load_autoencoder(folder)
    assert model.config.scaling_factor == pytest.approx(vae.config.scaling_factor)
    assert model.config.shift_factor == pytest.approx(vae.config.shift_factor or 0.0)
    np.testing.assert_allclose(model.encode(images(2, size=32)), means, atol=1e-4)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.decoder(means)), decoded, atol=1e-4)
    np.testing.assert_allclose(model.decode(means), np.clip(decoded, -1, 1), atol=1e-4)


def test_a_pipeline_folder_with_vae_inside_loads_too(diffusers_vae, tmp_path):
    _, folder, (means, _) = diffusers_vae
    os.symlink(folder, tmp_path / "vae")
    np.testing.assert_allclose(load_autoencoder(tmp_path).encode(images(2, size=32)), means, atol=1e-4)


def test_old_attention_names_and_conv_shaped_attention_weights_load_too(diffusers_vae, tmp_path):
    from safetensors.numpy import load_file, save_file

    _, folder, (means, _) = diffusers_vae
    old_names = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
    tensors = {}
    for name, value in load_file(os.path.join(folder, WEIGHTS_FILE)).items():
        for new, old in old_names.items():
            if f".attentions.0.{new}." in name:
                name = name.replace(f".{new}.", f".{old}.")
                value = value.reshape(*value.shape, 1, 1) if value.ndim == 2 else value  # a 1x1 conv's weight
        tensors[name] = value
    if not any("proj_attn" in name for name in tensors):
        pytest.skip("this configuration has no attention")
    save_file(tensors, str(tmp_path / WEIGHTS_FILE))
    os.symlink(os.path.join(folder, "config.json"), tmp_path / "config.json")
    np.testing.assert_allclose(load_autoencoder(tmp_path).encode(images(2, size=32)), means, atol=1e-4)


def copy_with_weights(folder: str, target, change) -> str:
    """A copy of the diffusers folder whose weights `change(tensors)` has edited."""
    from safetensors.numpy import load_file, save_file

    tensors = load_file(os.path.join(folder, WEIGHTS_FILE))
    change(tensors)
    save_file(tensors, str(target / WEIGHTS_FILE))
    os.symlink(os.path.join(folder, "config.json"), target / "config.json")
    return str(target)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.pop("decoder.conv_out.bias"), r"has no decoder.conv_out.bias \(1 weights missing\)"),
        (lambda t: t.update(extra=np.zeros(3, "float32")), r"holds extra \(1 weights\)"),
        (
            lambda t: t.update({"encoder.conv_in.weight": t["encoder.conv_in.weight"][:, :1]}),
            r"encoder.conv_in.weight has shape \((16|32), 1, 3, 3\), but .* needs \((16|32), 3, 3, 3\)",
        ),
    ],
    ids=["missing", "unexpected", "shape"],
)
def test_weights_that_do_not_fit_the_config_are_refused_naming_the_first_mismatch(
    diffusers_vae, tmp_path, change, message
):
    _, folder, _ = diffusers_vae
    with pytest.raises(AutoencoderError, match=message) as error:
        load_autoencoder(copy_with_weights(folder, tmp_path, change))
    assert "\n" not in str(error.value)


def test_a_config_json_of_another_architecture_is_refused(tmp_path):
    for values, message in [
        ({"_class_name": "AutoencoderTiny"}, "describes a 'AutoencoderTiny' model"),
        ({"block_out_channels": [64], "act_fn": "gelu"}, "act_fn='gelu'"),
        ({"block_out_channels": [32, 48], "norm_num_groups": 32}, "norm_groups=32 must divide every width"),
    ]:
        (tmp_path / "config.json").write_text(json.dumps(values))
        (tmp_path / WEIGHTS_FILE).write_bytes(b"")
        with pytest.raises(AutoencoderError, match=message):
            load_autoencoder(tmp_path)


def test_a_hugging_face_name_goes_through_snapshot_download(diffusers_vae, monkeypatch):
    """Offline: snapshot_download is replaced by one that hands back the local folder."""
    huggingface_hub = pytest.importorskip("huggingface_hub")
    _, folder, (means, _) = diffusers_vae
    asked = {}

    def fake_snapshot_download(name, allow_patterns):
        asked.update(name=name, patterns=allow_patterns)
        return folder

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    model = load_autoencoder("stabilityai/sd-vae-ft-mse")
    assert asked["name"] == "stabilityai/sd-vae-ft-mse" and "vae/config.json" in asked["patterns"]
    np.testing.assert_allclose(model.encode(images(2, size=32)), means, atol=1e-4)


# ================================================================================== untrusted files (issue 40)
def write_folder(folder, config: dict, tensors: dict | None = None) -> str:
    """A diffusers folder of `config` and `tensors` (an empty weights file when None)."""
    from safetensors.numpy import save_file

    (folder / "config.json").write_text(json.dumps(config))
    if tensors is None:
        (folder / WEIGHTS_FILE).write_bytes(b"")
    else:
        save_file(tensors, str(folder / WEIGHTS_FILE))
    return str(folder)


def refuse_to_build(monkeypatch):
    """Make building an autoencoder from a diffusers folder fail the test: refusals must come first."""

    def fail(*args, **kwargs):
        raise AssertionError("built before it checked")

    monkeypatch.setattr(from_diffusers, "Autoencoder", fail)


@pytest.mark.parametrize(
    "config, message",
    [
        (dict(block_out_channels=[64], layers_per_block=1000000), r"layers_per_block asks for 1000000 layers"),
        (dict(block_out_channels=[131072, 262144]), r"widths asks for 262144 channels"),
        (dict(block_out_channels=[64] * 9), r"widths asks for 9 blocks"),
        (dict(block_out_channels=[64], latent_channels=10**6), r"latent_channels asks for 1000000 channels"),
        (dict(block_out_channels=[4096] * 8, layers_per_block=8), r"of [\d,]+ parameters is more than"),
        (dict(block_out_channels=[64], sample_size=10**9), r"sample_size=1000000000"),
        (dict(block_out_channels=[64], down_block_types=5), r"down_block_types=5 "),
        (dict(down_block_types=["DownEncoderBlock2D"] * 4), r"config.json has no block_out_channels"),
    ],
    ids=["layers", "channels", "blocks", "latent", "parameters", "sample_size", "block_types", "missing"],
)
def test_a_config_json_asking_for_too_much_is_refused_before_anything_is_built(tmp_path, monkeypatch, config, message):
    refuse_to_build(monkeypatch)
    with pytest.raises(AutoencoderError, match=message) as error:
        load_autoencoder(write_folder(tmp_path, config))
    assert "\n" not in str(error.value) and len(str(error.value)) < 400


def test_the_limits_admit_the_real_vaes_and_count_parameters_as_the_model_does():
    sdxl = dict(block_out_channels=[128, 256, 512, 512], layers_per_block=2, norm_num_groups=32, sample_size=1024)
    sd3 = {**sdxl, "latent_channels": 16, "use_quant_conv": False, "use_post_quant_conv": False}
    assert parameter_count(config_from_diffusers(sdxl, "sdxl")) == 83_653_863  # diffusers' count for SD's VAE
    assert config_from_diffusers(sd3, "sd3").latent_channels == 16
    for config in (TINY, AutoencoderConfig(widths=[8, 16], image_channels=1, norm_groups=4, mid_attention=False)):
        assert parameter_count(config) == build_autoencoder(config).count_params()
    with pytest.raises(ConfigError, match="layers_per_block asks for 1000000 layers"):
        AutoencoderConfig(layers_per_block=1000000)  # a .keras file's config goes through the same check


@pytest.mark.parametrize(
    "text, message",
    [
        ("[" * 100_000 + "]" * 100_000, "nests its JSON too deeply"),  # RecursionError in json.loads
        ('{"block_out_channels": ' + "[" * 50 + "]" * 50 + "}", "nests its JSON too deeply"),
        ('{"block_out_channels": [64], "x": "' + " " * 2**20 + '"}', r"is over 1,048,576 bytes"),
    ],
    ids=["recursion", "deep", "large"],
)
def test_a_config_json_too_deep_or_too_large_is_refused_in_one_line(tmp_path, monkeypatch, text, message):
    refuse_to_build(monkeypatch)
    write_folder(tmp_path, {})
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(AutoencoderError, match=message) as error:
        load_autoencoder(tmp_path)
    assert "\n" not in str(error.value)


def keras_zip(path, members: dict[str, bytes]) -> str:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return str(path)


@pytest.mark.parametrize("loader, error_type", [(load_autoencoder, AutoencoderError), (load_model, CheckpointError)])
def test_a_keras_file_whose_config_inflates_too_far_is_refused_before_keras_reads_it(
    tmp_path, monkeypatch, loader, error_type
):
    def fail(*args, **kwargs):
        raise AssertionError("keras read the file")

    monkeypatch.setattr(keras.saving, "load_model", fail)
    bomb = keras_zip(tmp_path / "bomb.keras", {"metadata.json": b"{}", "config.json": b" " * (11 * 2**20)})
    assert os.path.getsize(bomb) < 2**20 // 10
    with pytest.raises(error_type, match=r"is refused: its config.json inflates to 11,534,336 bytes") as error:
        loader(bomb)
    assert "\n" not in str(error.value)


def test_a_keras_autoencoder_file_inflating_past_what_an_autoencoder_can_be_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(loading, "MAX_KERAS_BYTES", 1000)
    path = keras_zip(tmp_path / "big.keras", {"config.json": b"{}", "model.weights.h5": bytes(2000)})
    with pytest.raises(AutoencoderError, match=r"inflates to 2,002 bytes, more than the 1,000"):
        load_autoencoder(path)


def torch_free_vae_folder(folder, change=None) -> str:
    """A diffusers folder of a tiny AutoencoderKL with random weights, made without torch; `change(tensors)`
    edits the weights before they are saved."""
    config = dict(block_out_channels=[8, 16], layers_per_block=1, latent_channels=4, norm_num_groups=4)
    model = Autoencoder(config_from_diffusers(config, "tiny"))
    rng = np.random.default_rng(0)
    tensors = {
        name: rng.normal(size=torch_layout_shape(tuple(variable.shape))).astype("float32")
        for name, variable in diffusers_names(model).items()
    }
    if change:
        change(tensors)
    return write_folder(folder, config, tensors)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.update({"decoder.conv_out.bias": np.arange(3)}), r"decoder.conv_out.bias holds int64 values"),
        (lambda t: t["encoder.conv_in.weight"].fill(np.nan), r"encoder.conv_in.weight holds NaN or infinite"),
        (lambda t: t.update({"quant_conv.bias": np.full(8, 1e300)}), r"quant_conv.bias holds NaN or infinite"),
    ],
    ids=["int64", "nan", "overflows-float32"],
)
def test_weights_that_are_not_finite_floats_are_refused_naming_the_tensor(tmp_path, change, message):
    pytest.importorskip("safetensors")
    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()
    load_autoencoder(torch_free_vae_folder(tmp_path / "good"))  # the same folder with good weights loads
    with pytest.raises(AutoencoderError, match=message) as error:
        load_autoencoder(torch_free_vae_folder(tmp_path / "bad", change))
    assert "\n" not in str(error.value)
