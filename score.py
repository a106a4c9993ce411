"""Predict with a finished finetuning run: a file of new examples, or the right ending of one story.

    python score.py --run save/sst2 --input new.tsv --out predictions.jsonl
    python score.py --run save/rocstories --story "Karen was assigned a roommate ..." \\
        --ending "Karen became good friends with her roommate." --ending "Karen hated her roommate."

--run is a train.py run folder ({save_dir}/{desc}/, any task, with or without --submit) or an
estimator's save. The library's side is finetuned.py (`load_run(...).predict_file(...)`).
"""
import argparse
import sys

import numpy as np

from checkpoint import BEST_PARAMS
from errors import GPT1Error, InputError, exit_with_error
from analysis import format_metrics
from finetune import metric_name
from finetuned import load_run

PROG = 'score.py'


def build_parser():
    p = argparse.ArgumentParser(prog=PROG, description="Predict with a finetuned run: a file of new examples "
                                                       "(--input), or the right ending of a story (--story).")
    p.add_argument('--run', required=True, help="the run folder ({save_dir}/{desc}/ of train.py) or an estimator's "
                                                "save")
    p.add_argument('--input', help="a CSV, TSV or JSONL file of examples with the run's text columns (a Story "
                                   "Cloze CSV for a multiple-choice run); a label column gives the metrics")
    p.add_argument('--out', help="write one JSON line per example (id, prediction, probabilities) here; "
                                 "default: a tab-separated line per example on stdout")
    p.add_argument('--text_columns', help="the input's text columns, comma-separated (default: the run's)")
    p.add_argument('--label_column', default='label', help="the input's label column, read when present")
    p.add_argument('--id_column', help="the input's id column (default: the run's, or 'id' when present; "
                                       "else row numbers)")
    p.add_argument('--story', help="a story (the four sentences) whose endings to score")
    p.add_argument('--ending', action='append', help="a candidate ending of --story; give two (or more)")
    p.add_argument('--params', default=BEST_PARAMS, help="parameters file in the run folder")
    p.add_argument('--encoder_path', default=None, help="default: the one the run used")
    p.add_argument('--bpe_path', default=None, help="default: the one the run used")
    p.add_argument('--device', default='cpu', help="where the model runs (cpu, cuda, cuda:1)")
    return p


def print_endings(endings, probs, out=None):
    """One line per ending: '*' before the most probable, its probability, the ending."""
    for j, (ending, prob) in enumerate(zip(endings, probs)):
        mark = '*' if j == int(np.argmax(probs)) else ' '
        print(f"{mark} {prob:.3f}  {ending}", file=out or sys.stdout)


def print_predictions(result, out=None):
    """id, prediction and its probability per example, tab-separated."""
    for row in result.rows():
        prob = row.get('probabilities', {}).get(str(row['prediction']))
        print('\t'.join([row['id'], str(row['prediction'])] + ([f'{prob:.4f}'] if prob is not None else [])),
              file=out or sys.stdout)


def run(args):
    """Load the run and predict what args ask; returns the probabilities (--story) or Predictions."""
    if (args.input is None) == (args.story is None):
        raise InputError("expected either --input FILE or --story with --ending (two or more)")
    run_ = load_run(args.run, args.params, args.encoder_path, args.bpe_path, args.device)
    if args.story is not None:
        probs = run_.score(args.story, args.ending or [])
        print_endings(args.ending, probs)
        return probs
    columns = args.text_columns.split(',') if args.text_columns else None
    result = run_.predict_file(args.input, columns, args.label_column, args.id_column)
    if args.out:
        result.write(args.out)
        print(f"{len(result.ids)} predictions written to {args.out}", file=sys.stderr)
    else:
        print_predictions(result)
    if result.metrics:
        metrics = {metric_name(k): v for k, v in result.metrics.items()}
        print('\n'.join(format_metrics(args.input, metrics)), file=sys.stderr)
    return result


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except GPT1Error as err:
        exit_with_error(PROG, err)


if __name__ == '__main__':
    main()
