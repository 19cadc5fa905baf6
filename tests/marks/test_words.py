from grader.marks.words import count_words, sentences, units


def test_latin_words_are_whitespace_tokens() -> None:
    assert count_words("The loss - it diverges.") == 5  # as str.split() counted


def test_cjk_characters_count_one_word_each() -> None:
    assert count_words("学习率太大时，损失会发散。") == 11  # noqa: RUF001 (6 + 5; no punctuation)
    assert count_words("loss来回oscillate甚至diverge") == 7  # 4 characters + 3 runs


def test_hangul_is_counted_by_spaces() -> None:
    assert count_words("학습률이 너무 크면 발산합니다") == 4


def test_min_words_no_longer_penalises_chinese() -> None:
    # 25 characters of Chinese say about what 15-20 English words say.
    answer = "学习率过大时每一步都会越过最小值损失来回震荡甚至发散"
    assert count_words(answer) >= 25


def test_sentences_split_on_cjk_marks_bullets_and_paragraphs_not_soft_breaks() -> None:
    text = (
        "First point wraps\nonto a second line. Second!\n\n- bullet one\n- bullet two\n\n"
        "第一句。第二句？"  # noqa: RUF001
    )
    assert sentences(text) == [
        "First point wraps onto a second line.",
        "Second!",
        "bullet one",
        "bullet two",
        "第一句",
        "第二句",
    ]


def test_units_add_the_clauses_of_long_sentences() -> None:
    got = units("The step is too large and overshoots, so the loss oscillates wildly around")
    assert got[0].startswith("The step")
    assert "so the loss oscillates wildly around" in got
