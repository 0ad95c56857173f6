"""Register prior: DiT shape/config contract, block offsets, DDPM loss, DDIM and multistep-solver sampling, the
distilled few-step student, PRDC and PSNR."""

import math

import numpy as np
import pytest
import torch

from crocodil_hf.evaluation.prior_metrics import prdc, psnr_curve, register_prdc
from crocodil_hf.modeling.modeling_register_encoder import normalize_registers
from crocodil_hf.modeling.modeling_register_prior import RegisterPriorTransformer, block_timesteps, register_blocks
from crocodil_hf.schedulers.scheduling_register_prior import (
    PRIOR_SOLVERS,
    block_timestep_offsets,
    make_noise_scheduler,
    make_prior_scheduler,
    make_sampling_scheduler,
    sample_registers,
)
from crocodil_hf.training.prior_loss import register_prior_loss

K, D = 4, 8


def tiny_prior(**overrides) -> RegisterPriorTransformer:
    torch.manual_seed(0)
    kwargs = dict(num_registers=K, register_dim=D, hidden_size=64, num_layers=2, num_attention_heads=4)
    kwargs.update(overrides)
    return RegisterPriorTransformer(**kwargs)


def cluster_data(n: int, num_clusters: int = 4, seed: int = 0, spread: float = 0.35):
    """Register banks drawn from `num_clusters` prototypes on the √d sphere (per register), with small noise."""
    g = torch.Generator().manual_seed(1234)
    prototypes = normalize_registers(torch.randn(num_clusters, K, D, generator=g))
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, num_clusters, (n,), generator=g)
    banks = normalize_registers(prototypes[labels] + spread * torch.randn(n, K, D, generator=g))
    return banks, labels, prototypes


def train(prior, steps=400, conditional=False, seed=0):
    scheduler = make_noise_scheduler()
    optimizer = torch.optim.AdamW(prior.parameters(), lr=2e-3, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    losses = []
    for step in range(steps):
        banks, labels, _ = cluster_data(128, seed=seed * 100_000 + step)
        condition = torch.nn.functional.one_hot(labels, 4).float()[:, None, :] if conditional else None
        loss = register_prior_loss(prior, scheduler, banks, encoder_hidden_states=condition, generator=g)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return prior.eval(), losses


@pytest.fixture(scope="module")
def trained_unconditional():
    return train(tiny_prior(timestep_offsets=block_timestep_offsets(K, 0.2)))


@pytest.fixture(scope="module")
def trained_conditional():
    return train(tiny_prior(cross_attention_dim=4, timestep_offsets=block_timestep_offsets(K, 0.2)), conditional=True)


def test_geometric_blocks_and_offsets():
    assert register_blocks(1) == [1]
    assert register_blocks(8) == [1, 2, 4, 1]
    assert register_blocks(15) == [1, 2, 4, 8]
    offsets = block_timestep_offsets(15, 0.3)
    assert offsets[0] == 0.0 and offsets[-1] == pytest.approx(0.3) and offsets == sorted(offsets)
    t = block_timesteps(torch.tensor([100, 990]), offsets, 15, 1000)
    assert t.shape == (2, 15)
    assert t[0].tolist() == [100, 200, 200, 300, 300, 300, 300] + [400] * 8  # later blocks are noisier
    assert t[1].max() == 999  # clipped at T-1
    assert block_timesteps(torch.tensor([5]), None, 15, 1000).unique().tolist() == [5]  # switched off


def test_prior_predicts_x0_of_the_right_shape_and_round_trips(tmp_path):
    prior = tiny_prior(cross_attention_dim=6, timestep_offsets=[0.0, 0.1, 0.2])
    torch.nn.init.normal_(prior.proj_out.weight, std=0.1)
    z = torch.randn(2, K, D)
    cond = torch.randn(2, 3, 6)
    out = prior(z, torch.tensor([3, 700]), encoder_hidden_states=cond, encoder_attention_mask=torch.ones(2, 3)).sample
    assert out.shape == (2, K, D)
    prior.save_pretrained(tmp_path)
    loaded = RegisterPriorTransformer.from_pretrained(tmp_path)
    assert loaded.config.timestep_offsets == [0.0, 0.1, 0.2] and loaded.is_conditional
    assert torch.equal(out, loaded(z, torch.tensor([3, 700]), cond, torch.ones(2, 3)).sample)


def test_cross_attention_mask_hides_padded_condition_tokens():
    prior = tiny_prior(cross_attention_dim=6).eval()
    torch.nn.init.normal_(prior.proj_out.weight, std=0.1)
    z, cond = torch.randn(1, K, D), torch.randn(1, 3, 6)
    changed = cond.clone()
    changed[:, 2] = 100.0
    mask = torch.tensor([[1, 1, 0]])
    with torch.no_grad():
        a = prior(z, 10, cond, mask).sample
        b = prior(z, 10, changed, mask).sample
    assert torch.allclose(a, b, atol=1e-5)


def test_gradient_checkpointing_gives_same_gradients():
    prior = tiny_prior(cross_attention_dim=4)
    torch.nn.init.normal_(prior.proj_out.weight, std=0.1)
    z, cond = torch.randn(2, K, D), torch.randn(2, 2, 4)

    def grads():
        prior.zero_grad()
        prior(z, torch.tensor([1, 500]), cond).sample.square().sum().backward()
        return [p.grad.clone() for p in prior.parameters() if p.grad is not None]

    plain = grads()
    prior.enable_gradient_checkpointing()
    prior.train()
    for a, b in zip(plain, grads()):
        assert torch.allclose(a, b, atol=1e-6)


def test_sampling_without_offsets_is_exactly_diffusers_ddim():
    prior = tiny_prior().eval()
    torch.nn.init.normal_(prior.proj_out.weight, std=0.1)
    out = sample_registers(
        prior,
        make_sampling_scheduler(),
        3,
        num_inference_steps=8,
        generator=torch.Generator().manual_seed(0),
        renormalize=False,
    )
    scheduler = make_sampling_scheduler()
    scheduler.set_timesteps(8)
    from diffusers.utils.torch_utils import randn_tensor

    x = randn_tensor((3, K, D), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for t in scheduler.timesteps:
            x = scheduler.step(prior(x, t).sample, t, x).prev_sample
    assert torch.allclose(out.registers, x, atol=1e-6)
    assert out.num_prior_calls == 8


def test_sampling_with_offsets_takes_every_block_to_t0():
    prior = tiny_prior(timestep_offsets=block_timestep_offsets(K, 0.3)).eval()
    with torch.no_grad():
        prior.proj_out.bias.copy_(torch.linspace(-1, 1, D))  # the prior always predicts this constant bank
    out = sample_registers(prior, make_sampling_scheduler(), 2, num_inference_steps=10, renormalize=False)
    assert torch.allclose(out.registers, torch.linspace(-1, 1, D).expand(2, K, D), atol=1e-5)
    assert out.num_prior_calls == 10 + 3  # ceil(0.3 * 1000 / 100) extra steps for the last block


def test_sampling_is_deterministic_per_generator_and_per_sample_in_a_batch():
    prior = tiny_prior().eval()
    torch.nn.init.normal_(prior.proj_out.weight, std=0.1)
    sched = make_sampling_scheduler()

    def run(seeds, eta=0.5):
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        return sample_registers(prior, sched, len(seeds), num_inference_steps=6, eta=eta, generator=gens).registers

    batch = run([1, 2, 3])
    assert torch.equal(batch, run([1, 2, 3]))
    assert torch.allclose(batch[1], run([2])[0], atol=1e-6)
    sampled = sample_registers(prior, sched, 2, num_inference_steps=6).registers
    assert torch.allclose(sampled.norm(dim=-1), torch.full((2, K), math.sqrt(D)), atol=1e-4)  # renormalised


class RegisterwisePrior(RegisterPriorTransformer):
    """A prior whose x₀-prediction of each register depends only on that register and its own time (so a block's
    trajectory can be replayed alone); it records the per-register times of every call."""

    def forward(self, sample, timestep, encoder_hidden_states=None, encoder_attention_mask=None, return_dict=True):
        self.calls.append(timestep.clone())
        t = timestep.float()[..., None] / 1000
        from crocodil_hf.modeling.modeling_register_prior import RegisterPriorOutput

        return RegisterPriorOutput(sample=0.6 * sample * (1 - t) + 0.3 * torch.sin(3 * sample) * t + 0.1)


MULTISTEP = [name for name in PRIOR_SOLVERS if name != "ddim"]


@pytest.mark.parametrize("solver", MULTISTEP)
def test_multistep_solver_without_offsets_is_exactly_the_diffusers_loop(solver):
    prior = tiny_prior().eval()
    torch.nn.init.normal_(prior.proj_out.weight, std=0.1)
    scheduler = make_prior_scheduler(solver, make_sampling_scheduler().config)
    latents = torch.randn(3, K, D, generator=torch.Generator().manual_seed(0))
    out = sample_registers(prior, scheduler, 3, num_inference_steps=7, latents=latents, renormalize=False)
    reference = type(scheduler).from_config(scheduler.config)
    reference.set_timesteps(7)
    x = latents.clone()
    with torch.no_grad():
        for t in reference.timesteps:
            x = reference.step(prior(x, t).sample, t, x).prev_sample
    assert torch.equal(out.registers, x)
    assert out.num_prior_calls == 7


@pytest.mark.parametrize("solver", MULTISTEP)
def test_multistep_solver_runs_each_offset_block_on_its_own_shifted_grid(solver):
    """With offsets, every block is the scheduler's own loop over its grid clip(τ + Δ_b·T): it waits at T−1 until its
    time first moves, then steps once per base step; blocks differ from each other."""
    offsets = block_timestep_offsets(K, 0.3)  # K = 4: blocks [1, 2, 1], shifts 0, 150, 300
    prior = RegisterwisePrior(num_registers=K, register_dim=D, hidden_size=32, num_layers=1, num_attention_heads=4,
                              timestep_offsets=offsets)  # fmt: skip
    prior.calls = []
    scheduler = make_prior_scheduler(solver, make_sampling_scheduler().config)
    latents = torch.randn(2, K, D, generator=torch.Generator().manual_seed(0))
    out = sample_registers(prior, scheduler, 2, num_inference_steps=5, latents=latents, renormalize=False)
    assert out.num_prior_calls == len(prior.calls) == 5 + 2  # ceil(300 / 200) extra base steps
    recorded = list(prior.calls)
    scheduler.set_timesteps(5)
    base = scheduler.timesteps.tolist() + [scheduler.timesteps[-1].item() - 200 * (i + 1) for i in range(2)]
    finals = []
    for register, shift in ((0, 0), (1, 150), (3, 300)):
        times = [min(tau + shift, 999) for tau in base]
        grid = [t for i, t in enumerate(times) if t >= 0 and (i + 1 == len(times) or times[i + 1] < t)]
        alone = type(scheduler).from_config(scheduler.config)
        if "timesteps" in __import__("inspect").signature(alone.set_timesteps).parameters:
            alone.set_timesteps(timesteps=grid)
        else:  # UniPC: its own grid of that length, then the block's times and σ's
            alone.set_timesteps(len(grid))
            a = alone.alphas_cumprod[torch.tensor(grid)].double()
            alone.sigmas = torch.cat([((1 - a) / a) ** 0.5, torch.zeros(1, dtype=torch.float64)]).float()
            alone.timesteps = torch.tensor(grid)
        x = latents[:, register : register + 1].clone()
        for t in grid:
            x0 = prior.__class__.forward(prior, x, torch.full((2, 1), t)).sample
            x = alone.step(x0, t, x).prev_sample
        assert torch.allclose(out.registers[:, register : register + 1], x, atol=1e-5), (register, grid)
        called = [int(c[0, register]) for c in recorded]
        assert called == [max(t, 0) for t in times]  # waits at T−1, clean (t = 0) once finished
        finals.append(x)
    assert not torch.allclose(finals[0], finals[2])


@pytest.mark.parametrize("solver", MULTISTEP)
def test_multistep_solver_with_offsets_lands_every_block_on_a_constant_prediction(solver):
    prior = tiny_prior(timestep_offsets=block_timestep_offsets(K, 0.3)).eval()
    with torch.no_grad():
        prior.proj_out.bias.copy_(torch.linspace(-1, 1, D))  # the prior always predicts this constant bank
    scheduler = make_prior_scheduler(solver, make_sampling_scheduler().config)
    out = sample_registers(prior, scheduler, 2, num_inference_steps=4, renormalize=False)
    assert torch.allclose(out.registers, torch.linspace(-1, 1, D).expand(2, K, D), atol=1e-4)
    assert out.num_prior_calls == 4 + 2  # ceil(0.3 * 1000 / 250) extra steps for the last block


def test_prior_solvers_keep_the_schedule_and_refuse_what_cannot_carry_offsets():
    from diffusers import DPMSolverMultistepScheduler, EulerDiscreteScheduler

    base = make_sampling_scheduler().config
    for name, (cls, _) in PRIOR_SOLVERS.items():
        scheduler = make_prior_scheduler(name, base)
        assert type(scheduler) is cls and scheduler.config.prediction_type == "sample"
        assert scheduler.config.beta_schedule == base.beta_schedule and scheduler.config.timestep_spacing == "trailing"
    # built from another solver's config (a pipeline that ships DPM-Solver++), DDIM still samples registers unclipped
    ddim = make_prior_scheduler("ddim", make_prior_scheduler("dpmsolver++", base).config)
    assert not ddim.config.clip_sample and ddim.config.set_alpha_to_one
    public = lambda config: {k: v for k, v in config.items() if not k.startswith("_")}  # noqa: E731
    assert public(ddim.config) == public(make_prior_scheduler("ddim", base).config)
    prior = tiny_prior()
    with pytest.raises(ValueError, match="unknown prior solver 'euler'"):
        make_prior_scheduler("euler", base)
    with pytest.raises(TypeError, match="EulerDiscreteScheduler"):
        sample_registers(prior, EulerDiscreteScheduler(prediction_type="sample"), 1)
    karras = DPMSolverMultistepScheduler.from_config(base, use_karras_sigmas=True)
    with pytest.raises(ValueError, match="use_karras_sigmas"):
        sample_registers(prior, karras, 1)
    with pytest.raises(ValueError, match="eta"):
        sample_registers(prior, make_prior_scheduler("dpmsolver++", base), 1, eta=0.5)


def test_distilled_student_samples_in_one_step_what_its_teacher_samples_in_twenty(trained_unconditional):
    """PriorDistillObjective: after distillation the student's 1-step sample from a noise is close to the teacher's
    20-step sample from the same noise, much closer than the teacher's own 1-step sample (the invariant of
    distillation), and its samples are about as precise as the teacher's 20-step ones (PRDC on the data clusters)."""
    from crocodil_hf.training.objectives import PriorDistillObjective

    teacher, _ = trained_unconditional
    solver = make_prior_scheduler("dpmsolver++", make_sampling_scheduler().config)
    student = RegisterPriorTransformer.from_config(teacher.config, distilled_steps=1)
    student.load_state_dict(teacher.state_dict())
    objective = PriorDistillObjective(student.train(), teacher, solver, teacher_steps=20)
    assert not any(p.requires_grad for p in objective.teacher.parameters())
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-3, weight_decay=0.0)
    for step in range(150):
        seeds = torch.arange(64) + 64 * step
        loss = objective(torch.zeros(64, K, D), row_seeds=seeds)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    student.eval()
    noise = torch.randn(256, K, D, generator=torch.Generator().manual_seed(99))

    def sample(prior, steps):
        return sample_registers(prior, solver, 256, num_inference_steps=steps, latents=noise).registers

    target = sample(teacher, 20)
    student_error = (sample(student, 1) - target).norm(dim=-1).mean()
    teacher_error = (sample(teacher, 1) - target).norm(dim=-1).mean()
    assert student_error < 0.5 * teacher_error, (student_error, teacher_error)
    banks, _, _ = cluster_data(512, seed=7)
    quality = {
        name: register_prdc(banks, sample(prior, steps))["precision"]
        for name, prior, steps in (("student", student, 1), ("teacher", teacher, 20), ("teacher 1", teacher, 1))
    }
    assert quality["student"] > quality["teacher"] - 0.15 and quality["student"] > quality["teacher 1"] + 0.1, quality


def test_trained_prior_samples_land_on_the_data(trained_unconditional):
    prior, losses = trained_unconditional
    assert np.mean(losses[-30:]) < 0.5 * np.mean(losses[:30])
    real, _, prototypes = cluster_data(300, seed=99)
    sched = make_sampling_scheduler()
    fake = sample_registers(prior, sched, 300, num_inference_steps=20, generator=torch.Generator().manual_seed(0))
    untrained = tiny_prior(timestep_offsets=block_timestep_offsets(K, 0.2)).eval()
    torch.nn.init.normal_(untrained.proj_out.weight, std=0.5)
    baseline = sample_registers(
        untrained, sched, 300, num_inference_steps=20, generator=torch.Generator().manual_seed(0)
    )
    trained_scores = register_prdc(real, fake.registers, nearest_k=5)
    untrained_scores = register_prdc(real, baseline.registers, nearest_k=5)
    assert trained_scores["precision"] > 0.7 and trained_scores["recall"] > 0.6, trained_scores
    assert trained_scores["precision"] > untrained_scores["precision"] + 0.3
    assert trained_scores["recall"] > untrained_scores["recall"] + 0.2
    # every prototype is generated (no mode collapse)
    nearest = torch.cdist(fake.registers.flatten(1), prototypes.flatten(1)).argmin(dim=1)
    assert torch.bincount(nearest, minlength=4).min() > 20


def test_conditional_prior_follows_its_condition(trained_conditional, trained_unconditional):
    prior, _ = trained_conditional
    _, _, prototypes = cluster_data(1)
    labels = torch.arange(4).repeat(50)
    condition = torch.nn.functional.one_hot(labels, 4).float()[:, None, :]
    samples = sample_registers(
        prior,
        make_sampling_scheduler(),
        200,
        num_inference_steps=20,
        encoder_hidden_states=condition,
        generator=torch.Generator().manual_seed(0),
    )
    nearest = torch.cdist(samples.registers.flatten(1), prototypes.flatten(1)).argmin(dim=1)
    accuracy = (nearest == labels).float().mean().item()
    assert accuracy > 0.8, accuracy  # chance is 0.25

    real, real_labels, _ = cluster_data(200, seed=7)
    cond = torch.nn.functional.one_hot(real_labels, 4).float()[:, None, :]
    sched = make_noise_scheduler()
    late = [600, 800, 950]
    conditional_curve = psnr_curve(
        prior, sched, real, late, encoder_hidden_states=cond, generator=torch.Generator().manual_seed(0)
    )
    unconditional_curve = psnr_curve(
        trained_unconditional[0], sched, real, late, generator=torch.Generator().manual_seed(0)
    )
    for c, u in zip(conditional_curve, unconditional_curve):
        assert c["psnr"] > u["psnr"] + 1.0, (c, u)


def test_prdc_matches_the_public_implementation_on_gaussian_data():
    prdc_reference = pytest.importorskip("prdc")
    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 32)).astype(np.float32)
    fake = rng.normal(loc=0.3, size=(300, 32)).astype(np.float32)
    reference = prdc_reference.compute_prdc(real, fake, nearest_k=5)
    ours = prdc(torch.from_numpy(real), torch.from_numpy(fake), nearest_k=5)
    for key in ("precision", "recall", "density", "coverage"):
        assert ours[key] == pytest.approx(float(reference[key]), abs=1e-6), key


def test_prdc_of_identical_distributions_is_high():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(500, 16, generator=g), torch.randn(500, 16, generator=g)
    scores = prdc(a, b, nearest_k=5)
    assert scores["coverage"] > 0.9 and scores["density"] > 0.8


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"timestep_offsets": [0.0, 0.1]}, "timestep_offsets"),
        ({"timestep_offsets": [0.2, 0.1, 0.0]}, "non-decreasing"),
        ({"hidden_size": 30}, "hidden_size"),
        ({"num_registers": 0}, "num_registers"),
    ],
)
def test_bad_configs_raise_before_compute(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny_prior(**kwargs)


def test_bad_inputs_raise_before_compute():
    unconditional = tiny_prior()
    with pytest.raises(ValueError, match="cross-attention"):
        unconditional(torch.randn(1, K, D), 1, encoder_hidden_states=torch.randn(1, 2, 4))
    with pytest.raises(ValueError, match="sample"):
        unconditional(torch.randn(1, K, D + 1), 1)
    conditional = tiny_prior(cross_attention_dim=4)
    with pytest.raises(ValueError, match="encoder_hidden_states"):
        conditional(torch.randn(1, K, D), 1, encoder_hidden_states=torch.randn(1, 2, 5))
    with pytest.raises(ValueError, match="conditional"):
        sample_registers(conditional, make_sampling_scheduler(), 1)
    from diffusers import DDIMScheduler

    with pytest.raises(ValueError, match="clip_sample"):
        sample_registers(unconditional, DDIMScheduler(prediction_type="sample", clip_sample=True), 1)
    with pytest.raises(ValueError, match="prediction_type"):
        sample_registers(unconditional, DDIMScheduler(clip_sample=False), 1)
    with pytest.raises(ValueError, match="nearest_k"):
        prdc(torch.randn(5, 2), torch.randn(5, 2), nearest_k=5)
