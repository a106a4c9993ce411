"""ROCStories / Story Cloze Test (spring 2016) loading, split as in OpenAI's finetune-transformer-lm."""
import csv
import os

import numpy as np
from sklearn.model_selection import train_test_split

ROCSTORIES_URL = 'https://cs.rochester.edu/nlp/rocstories/'
VAL_FILE = 'cloze_test_val__spring2016 - cloze_test_ALL_val.csv'
TEST_FILE = 'cloze_test_test__spring2016 - cloze_test_ALL_test.csv'
HEADER = ['InputStoryid', 'InputSentence1', 'InputSentence2', 'InputSentence3', 'InputSentence4',
          'RandomFifthSentenceQuiz1', 'RandomFifthSentenceQuiz2', 'AnswerRightEnding']
# The original's seed: with it the train/valid split is the one the paper's runs used.
SEED = 3535999445


def _missing(what, path):
    """Build the FileNotFoundError for a missing ROCStories folder or file."""
    return FileNotFoundError(
        f"ROCStories {what} {path} not found: expected a folder holding '{VAL_FILE}' and '{TEST_FILE}', "
        f"the Story Cloze Test (spring 2016) files from {ROCSTORIES_URL}")


def _read_cloze_csv(data_dir, name):
    """Read one Story Cloze CSV of `data_dir`.

    Returns (stories, endings1, endings2, labels): three lists of str, a story
    being its four sentences joined by a space, and a list of int labels
    AnswerRightEnding - 1. Raises FileNotFoundError for a missing folder or
    file and ValueError naming the file and row for anything malformed.
    """
    if not os.path.isdir(data_dir):
        raise _missing('data folder', data_dir)
    path = os.path.join(data_dir, name)
    if not os.path.isfile(path):
        raise _missing('file', path)
    try:
        # utf-8-sig: a spreadsheet program may have added a byte-order mark.
        with open(path, newline='', encoding='utf-8-sig') as f:
            rows = list(csv.reader(f))
    except (UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"ROCStories file {path} is malformed: {e}") from None
    if not rows:
        raise ValueError(f"ROCStories file {path} is malformed: the file is empty, expected the header {','.join(HEADER)}")
    if rows[0] != HEADER:
        raise ValueError(f"ROCStories file {path} is malformed: row 1 is {','.join(rows[0])!r:.200}, expected the header {','.join(HEADER)}")
    stories, endings1, endings2, labels = [], [], [], []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(HEADER):
            raise ValueError(f"ROCStories file {path} is malformed: row {number} has {len(row)} fields, expected {len(HEADER)} ({','.join(HEADER)})")
        if row[7].strip() not in ('1', '2'):
            raise ValueError(f"ROCStories file {path}: row {number} has AnswerRightEnding {row[7]!r}, expected 1 or 2")
        stories.append(' '.join(row[1:5]))
        endings1.append(row[5])
        endings2.append(row[6])
        labels.append(int(row[7]) - 1)
    return stories, endings1, endings2, labels


def rocstories(data_dir, n_train=1497, n_valid=374):
    """Load the Story Cloze Test as the original did.

    Takes the folder of the two CSVs. The validation file (1,871 stories) is
    split into train and valid by scikit-learn's train_test_split with the
    original's seed; the test file is the test set. n_train=1497 with
    n_valid=374 is the whole file, exactly the original split; a smaller
    n_train keeps a prefix of the same shuffled order.

    Returns ((trX1, trX2, trX3, trY), (vaX1, vaX2, vaX3, vaY), (teX1, teX2, teX3)):
    X1 stories, X2 and X3 the two endings (lists of str), Y the index of the
    right ending (numpy int32 array of 0/1).
    """
    stories, endings1, endings2, labels = _read_cloze_csv(data_dir, VAL_FILE)
    teX1, teX2, teX3, _ = _read_cloze_csv(data_dir, TEST_FILE)
    if n_valid < 1 or n_train < 1 or n_train + n_valid > len(stories):
        raise ValueError(f"rocstories: n_train={n_train} and n_valid={n_valid} must be positive and sum to at most "
                         f"the {len(stories)} stories of {VAL_FILE}")
    # One call over the parallel lists, as the original did, so every story keeps its endings and label.
    trX1, vaX1, trX2, vaX2, trX3, vaX3, trY, vaY = train_test_split(
        stories, endings1, endings2, labels, train_size=n_train, test_size=n_valid, random_state=SEED)
    trY = np.asarray(trY, dtype=np.int32)
    vaY = np.asarray(vaY, dtype=np.int32)
    return (trX1, trX2, trX3, trY), (vaX1, vaX2, vaX3, vaY), (teX1, teX2, teX3)


def rocstories_test_labels(data_dir):
    """Take the folder of the two CSVs; return the test set's right-ending indices, a numpy int32 array of 0/1."""
    return np.asarray(_read_cloze_csv(data_dir, TEST_FILE)[3], dtype=np.int32)
