"""The paper's zero-shot heuristics from the command line: a language model, no training.

    python zeroshot.py --task rocstories --model_dir model/ --data_dir data/ --out zeroshot.jsonl
    python zeroshot.py --task text --model_dir model/ --data_dir my_text.txt --stride 256

It loads the model and its tokenizer from --model_dir (OpenAI's GPT-1 or GPT-2 release, a Hugging
Face folder, a pretrain.py folder, a train.py run folder), reads and encodes the task's split,
scores it with a labelled progress bar, prints the task's metric, writes one JSON line per example
(per document for text) to --out and the settings and metrics to {log_dir}/{desc}.jsonl. The
heuristics and their choices are in heuristics.py and docs/zeroshot.md.
"""
import argparse
import json
import os
import sys
import time

from checkpoint import atomic_write
from distributed import resolve_device
from errors import ConfigError, InputError
from flags import DefaultsHelpFormatter
from heuristics import METRIC_OF, ZeroShotRun, evaluate_task, prepare_task
from lm_scores import load_language_model
from run_frame import check_writable, cli_main, closing_summary, open_log

PROG = 'zeroshot.py'
TITLES = {'rocstories': 'ROCStories', 'race': 'RACE', 'sst2': 'SST-2', 'cola': 'CoLA', 'dprd': 'DPRD',
          'text': 'text'}


def build_parser():
    p = argparse.ArgumentParser(description="Zero-shot heuristics of GPT-1's paper (section 5): tasks scored by a "
                                            "language model's log-probabilities, without training.",
                                formatter_class=DefaultsHelpFormatter)
    return ZeroShotRun.add_flags(p, defaults={'run': {'desc': None}})


def write_records(path, records):
    """One JSON line per record, written atomically."""
    def write(tmp):
        with open(tmp, 'w', encoding='utf-8') as f:
            for rec in records:
                f.write(json.dumps(rec) + '\n')
    atomic_write(path, write)


def metric_line(task, split, metrics):
    """The line that reports a task's result."""
    if task == 'text':
        return (f"text: perplexity {metrics['ppl_token']:.3f} per token, {metrics['ppl_word'] or float('nan'):.3f} "
                f"per word, {metrics['bits_per_byte']:.4f} bits per byte ({metrics['n_tokens']} tokens, "
                f"{metrics['n_documents']} documents)")
    value = metrics[METRIC_OF[task]]
    shown = 'n/a (no labels)' if value is None else f"{value:.2f}"
    line = f"{TITLES[task]} {split} zero-shot {METRIC_OF[task]}: {shown} ({metrics['n_examples']} examples)"
    if task == 'cola':
        line += f"; threshold {metrics['threshold']:.4f} chosen on train (MCC {metrics['train_mcc']:.2f})"
    return line


def run(args):
    """Run the heuristic the parsed flags name; returns its TaskResult."""
    started = time.time()
    try:
        cfg = ZeroShotRun.from_args(args)
    except ConfigError as err:
        raise InputError(err.as_flag(ZeroShotRun.flag_of(err.field))) from None
    z = cfg.zeroshot
    check_writable(os.path.dirname(os.path.abspath(z.out)), '--out')
    device = resolve_device(cfg.run.device)
    lm = load_language_model(cfg.source.model_dir, cfg.model.n_head, device, cfg.source.encoder_path,
                             cfg.source.bpe_path)
    data = prepare_task(z.task, z.data_dir, lm.tokenizer, lm.n_ctx, z.split, z.n_examples, z.stride, verbose=True)
    log_path = os.path.join(cfg.run.log_dir, f"{cfg.run.desc or 'zeroshot_' + z.task}.jsonl")
    settings = dict(cfg.flat(), split=data.split, checkpoint_format=lm.source, n_ctx=lm.n_ctx, n_vocab=lm.n_vocab,
                    tokenizer=type(lm.tokenizer).__name__)
    with open_log(log_path, settings) as log:
        result = evaluate_task(lm, None, data, budget=z.batch_tokens)
        write_records(z.out, result.records)
        log.log(task=z.task, split=data.split, **result.metrics)
    print(metric_line(z.task, data.split, result.metrics))
    print(closing_summary(f"{z.task} scored", [('records', z.out), ('log', log_path)], time.time() - started),
          file=sys.stderr)
    return result


def main(argv=None):
    """The command line; a detected bad input prints one line and exits with status 2."""
    return cli_main(PROG, run, build_parser().parse_args(argv), sys.argv[1:] if argv is None else argv)


if __name__ == '__main__':
    main()
