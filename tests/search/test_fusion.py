"""Reciprocal rank fusion on crafted rankings, the fused scores worked by hand."""

import numpy as np
import pytest

from ftlit.errors import FtlitError
from ftlit.search.fusion import reciprocal_rank_fusion


def test_passages_ranked_well_by_both_rankings_lead():
    # 1: 1/62 + 1/61; 3: 1/61 + 1/63; 4: 1/62; 2: 1/63
    first, second = np.array([[3, 1, 2]]), np.array([[1, 4, 3]])
    assert reciprocal_rank_fusion([first, second], depth=3).tolist() == [[1, 3, 4]]
    assert reciprocal_rank_fusion([first, second], depth=2).tolist() == [[1, 3]]


def test_k_sets_how_much_the_first_ranks_lead():
    # k=0: 5 and 9 score 1/1 = 1 and 7 scores 1/2 + 1/2 = 1, a tie; k=60: 1/61 < 1/62 + 1/62, so 7 leads
    first, second = np.array([[5, 7]]), np.array([[9, 7]])
    assert reciprocal_rank_fusion([first, second], k=0, depth=1).tolist() == [[5]]
    assert reciprocal_rank_fusion([first, second], k=60, depth=1).tolist() == [[7]]


def test_equal_scores_keep_the_lower_passage_index_first():
    # k=0: 2 scores 1, 1 scores 1, 0 scores 1/2 + 1/2; 3 and 4 score 1/3
    fused = reciprocal_rank_fusion([np.array([[2, 0, 3]]), np.array([[1, 0, 4]])], k=0, depth=3)
    assert fused.tolist() == [[0, 1, 2]]
    assert reciprocal_rank_fusion([np.array([[8, 5]]), np.array([[5, 8]])], depth=2).tolist() == [[5, 8]]


def test_each_query_is_fused_on_its_own_row():
    first = np.array([[0, 1], [2, 3]])
    second = np.array([[1, 0], [3, 4]])
    # query 0: a tie, lower index first; query 1: 3 in both (1/62 + 1/61) beats 2 (1/61)
    assert reciprocal_rank_fusion([first, second], depth=2).tolist() == [[0, 1], [3, 2]]


def test_one_ranking_fuses_to_itself_and_the_depth_stops_at_the_deepest_ranking():
    ranking = np.array([[4, 2, 9]])
    assert reciprocal_rank_fusion([ranking], depth=10).tolist() == [[4, 2, 9]]
    # a shallower second ranking: the fused ranking is as deep as the deepest one
    assert reciprocal_rank_fusion([ranking, np.array([[9]])], depth=10).tolist() == [[9, 4, 2]]


def test_bad_input_is_refused():
    ranking = np.array([[0, 1]])
    with pytest.raises(FtlitError, match="at least one ranking"):
        reciprocal_rank_fusion([], depth=5)
    with pytest.raises(FtlitError, match="different numbers of queries"):
        reciprocal_rank_fusion([ranking, np.array([[0], [1]])], depth=5)
    with pytest.raises(FtlitError, match="depth"):
        reciprocal_rank_fusion([ranking], depth=0)
    with pytest.raises(FtlitError, match="k"):
        reciprocal_rank_fusion([ranking], k=-1, depth=5)


def test_positions_holding_no_passage_get_no_credit():
    dense, bm25 = np.array([[3, 2, 1, 0]]), np.array([[-1, -1, -1, -1]])
    assert reciprocal_rank_fusion([dense, bm25], depth=4).tolist() == [[3, 2, 1, 0]]


def test_a_row_found_shorter_than_its_width_ends_in_no_passage():
    found, none = np.array([[4, -1, -1]]), np.array([[-1, -1, -1]])
    assert reciprocal_rank_fusion([found, none], depth=3).tolist() == [[4, -1, -1]]
