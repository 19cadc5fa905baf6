"""Suggested marks for written answers (the ``text`` check and the review page).

- :mod:`grader.marks.words`: word counts and sentences in any script (CJK included);
- :mod:`grader.marks.scheme`: a marking scheme (concepts with points, ``all``/``any``
  groups, caps, contradicting statements) and the mark it gives;
- :mod:`grader.marks.embed`: the sentence-embedding model shipped in a PyPI package,
  loaded lazily once per process;
- :mod:`grader.marks.match`: concepts found in an answer by phrase and by meaning, with
  the sentence that found each and a confidence;
- :mod:`grader.marks.calibrate`: suggestions calibrated on an instructor's marks, the
  "informative first" review order and groups of similar answers.
"""
