"""Answer checker for lesson 10 (the E資格 review): exam-style questions with worked explanations.

Each question of the lesson is answered in a variable (``answer_q01 = "b"``, ``answer_q04 = 121``,
``answer_q09 = (11, 11, 64)``) and checked with ``check_answer("q01", answer_q01)``:

* right — prints 正解 and the worked explanation;
* wrong — raises ``AssertionError`` saying why that answer is wrong (for each wrong choice, and for
  the usual slips in the numeric questions);
* not answered (``None``) or not a valid answer — raises ``AssertionError`` saying what to enter.

Four kinds of question:

* ``"choice"`` — pick a letter a–d;
* ``"fill"`` — the exam's code fill-in (穴埋め): a short NumPy program with one blank ``____`` and
  code fragments as the choices. The checker *runs* the program with the chosen fragment and shows
  what it computes next to the expected result (worked out by hand, :attr:`Question.expected`);
  :func:`run_fill_in` does the same for any letter, so a test can check that only the right
  fragment gives the right result;
* ``"number"`` and ``"shape"`` — a number, or a tuple of ints.

The choices' texts and the fill-in programs live here too (:data:`QUESTIONS`); a test checks that
the notebook shows each question with exactly these choices and this program, so the notebook and
the checker cannot drift apart. :func:`answer_shares` and :func:`longest_right_share` measure how
balanced the lettered questions are (tests keep every letter between 15 % and 35 % and the right
option the longest in at most 40 % of them).
"""
from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

#: The blank of a fill-in program.
BLANK = "____"
#: The letters of a lettered question, in order.
LETTERS = ("a", "b", "c", "d")


@dataclass(frozen=True)
class Question:
    """One exam question.

    Attributes
    ----------
    topic : short topic name (shown with the result)
    kind : ``"choice"`` or ``"fill"`` (answer a letter a–d), ``"number"`` or ``"shape"`` (a tuple
        of ints)
    answer : the right answer
    explanation : the worked explanation, shown when the answer is right
    choices : for ``"choice"`` / ``"fill"``: ``{letter: text}`` (for ``"fill"``, the code fragment
        that goes into the blank)
    why_wrong : for ``"choice"`` / ``"fill"``: ``{letter: why it is wrong}``; for ``"number"`` /
        ``"shape"``: ``{a usual wrong answer: what went wrong}``
    hint : shown for any other wrong answer
    code : for ``"fill"``: the program, with one :data:`BLANK`; it leaves its answer in ``result``
    expected : for ``"fill"``: the value ``result`` must have, worked out by hand
    """

    topic: str
    kind: str
    answer: Any
    explanation: str
    choices: dict = field(default_factory=dict)
    why_wrong: dict = field(default_factory=dict)
    hint: str = ""
    code: str = ""
    expected: Any = None


# --------------------------------------------------------------------- the fill-in programs

_GRADCAM_CODE = """\
# 2 枚の画像の特徴マップ A と、ロジット y^c の勾配 grads: どちらも (N, h, w, K) = (2, 1, 2, 2)
A = np.array([[[[1.0, 0.0], [0.0, 1.0]]],
              [[[2.0, 0.0], [0.0, 3.0]]]])
grads = np.array([[[[1.0, -1.0], [1.0, -1.0]]],
                  [[[-1.0, 2.0], [-1.0, 0.0]]]])
weights = ____
result = np.maximum((A * weights[..., None, None, :]).sum(axis=-1), 0)   # (N, h, w)"""

_IG_CODE = """\
def grad_F(p):                          # F(p) = p0² + 3·p1 の勾配
    return np.array([2 * p[0], 3.0])

x, x_base, m = np.array([1.0, 2.0]), np.array([0.5, 1.0]), 4
alphas = (np.arange(m) + 0.5) / m       # 中点の m 点
grads = np.stack([grad_F(x_base + a * (x - x_base)) for a in alphas])   # (m, 2)
result = ____"""

_SHAPLEY_CODE = """\
def shapley(v, n, i):
    others = [j for j in range(n) if j != i]
    phi = 0.0
    for size in range(n):
        for S in itertools.combinations(others, size):
            S = set(S)
            weight = ____
            phi += weight * (v(S | {i}) - v(S))
    return phi

votes = [2, 1, 1]                       # 票の合計が 3 以上のグループが勝つ (値 1)
v = lambda S: float(sum(votes[j] for j in S) >= 3)
result = np.array([shapley(v, 3, i) for i in range(3)])"""

_ROLLOUT_CODE = """\
# 2 層のアテンション (ヘッドで平均済み、各行の和は 1)。トークンは T = 2 個
attentions = [np.array([[1.0, 0.0], [0.5, 0.5]]),
              np.array([[0.5, 0.5], [0.0, 1.0]])]
T = 2
rollout = np.eye(T)
for A in attentions:
    A_res = ____
    A_res = A_res / A_res.sum(axis=-1, keepdims=True)
    rollout = A_res @ rollout
result = rollout"""


QUESTIONS: dict[str, Question] = {
    # ------------------------------------------------ 判断根拠の可視化: CAM と Grad-CAM
    "q01": Question(
        "CAM の式", "choice", "c",
        "GAP の後が全結合 1 層なら y^c = Σ_k w_k^c · (1/Z)Σ_ij A^k_ij = (1/Z)Σ_ij (Σ_k w_k^c A^k_ij)。"
        "スコアは M^c = Σ_k w_k^c A^k の空間平均なので、M^c はスコアを位置ごとに分けたマップになります。",
        choices={"a": "M^c = Σ_k A^k",
                 "b": "M^c = softmax(Σ_k w_k^c A^k)",
                 "c": "M^c = Σ_k w_k^c A^k",
                 "d": "M^c = Σ_c w_k^c A^k"},
        why_wrong={"a": "重みがないので、どのクラスでも同じマップになります。クラス c の重み w_k^c でチャンネルを重み付けします。",
                   "b": "softmax はクラスの間でかけるもので、画素の間ではありません。CAM は特徴マップの線形結合そのものです。",
                   "d": "和を取るのはクラス c ではなくチャンネル k です (クラス c のマップを 1 枚作るため)。"}),
    "q02": Question(
        "CAM に GAP が必要な理由", "choice", "d",
        "GAP → 全結合 1 層なら、スコアは位置ごとの Σ_k w_k^c A^k_ij の平均と書けるので、全結合の重みを"
        "そのまま特徴マップに戻せます。Flatten → 全結合 2 層のモデルでは、この書き換えができません (レッスン 03)。",
        choices={"a": "GAP を入れないと、畳み込みの後の全結合層の学習が収束しないから",
                 "b": "GAP が特徴マップの解像度を上げ、入力と同じ大きさのマップを作るから",
                 "c": "GAP を使うと softmax が要らなくなり、全結合の出力をそのまま確率として読めるから",
                 "d": "スコアが位置ごとの Σ_k w_k^c A^k の平均になり、重みを特徴マップに戻せるから"},
        why_wrong={"a": "Flatten のモデルも普通に学習できます (レッスン 02)。問題は学習ではなく、重みをマップに戻せるかです。",
                   "b": "GAP は各チャンネルを 1 つの数 (1×1) に縮めます。解像度は上がりません。",
                   "c": "GAP の後にも softmax はあります。CAM は softmax の前のスコアの式を使います。"}),
    "q03": Question(
        "CAM と Grad-CAM の関係", "choice", "a",
        "y^c = Σ_k w_k^c (1/Z)Σ_ij A^k_ij を A^k_ij で微分すると w_k^c / Z。その空間平均 α_k^c も w_k^c / Z なので、"
        "Grad-CAM のマップは CAM の 1/Z 倍 (ReLU の後も正の定数倍) です。CAM が Grad-CAM を理解する鍵なのはこのためで、"
        "Grad-CAM は CAM の重みを『勾配』に置き換えて、どの構造のモデルにも使えるようにしたものです。",
        choices={"a": "α_k^c = w_k^c / Z となり、マップは正の定数倍を除いて一致する",
                 "b": "重みの求め方が違うので、2 つのマップの間に決まった関係はない",
                 "c": "同じ層を使っても、Grad-CAM のマップのほうが常に解像度が高い",
                 "d": "α_k^c = −w_k^c / Z となり、2 つのマップの符号が逆になる"},
        why_wrong={"b": "スコアを A^k_ij で微分すると w_k^c / Z になり、重みは比例します。このレッスンの 3.1 で数値でも確かめました。",
                   "c": "同じ層を使えば解像度 (h×w) は同じです。",
                   "d": "y^c は A^k_ij に w_k^c / Z を掛けて足したものなので、微分は +w_k^c / Z です (Z > 0 で符号は同じ)。"}),
    "q04": Question(
        "Grad-CAM の重みの Z", "number", 121,
        "Z は特徴マップの画素の数 h × w = 11 × 11 = 121 で、α_k^c は勾配の空間平均です。チャンネル数 K=64 は平均に入りません。",
        why_wrong={11: "Z は 1 辺の長さではなく、画素の数 (高さ × 幅) です。",
                   64: "64 はチャンネル数 K です。平均は各チャンネルの中で、空間方向 (i, j) について取ります。",
                   7744: "h × w × K ではありません。チャンネルごとに、空間方向 (h × w) で平均します。",
                   169: "conv2 の出力は 13×13 ではなく、3×3 の valid 畳み込みで 2 画素小さくなり 11×11 です。"},
        hint="α_k^c = (1/Z)Σ_ij ∂y^c/∂A^k_ij は空間方向の平均です。conv2 の出力の高さと幅を掛けてください。"),
    "q05": Question(
        "Grad-CAM のマップの式", "choice", "b",
        "チャンネルの重み α_k^c で特徴マップ A^k を足し合わせ、最後に ReLU をかけます: L^c = ReLU(Σ_k α_k^c A^k)。",
        choices={"a": "L^c = Σ_k ReLU(α_k^c) A^k",
                 "b": "L^c = ReLU(Σ_k α_k^c A^k)",
                 "c": "L^c = ReLU(Σ_k α_k^c ∂y^c/∂A^k)",
                 "d": "L^c = softmax(Σ_k α_k^c A^k)"},
        why_wrong={"a": "ReLU をかけるのは重みではなく、足し合わせた後のマップです (負の重みのチャンネルもマップの形に効きます)。",
                   "c": "重みをかけるのは勾配ではなく特徴マップ A^k (活性) です。",
                   "d": "マップに softmax はかけません。正の部分を残す ReLU と、最大値で割る正規化です。"}),
    "q06": Question(
        "ReLU をかける理由", "choice", "d",
        "Σ_k α_k^c A^k が負の場所は、そこが強くなるとクラス c のスコアが下がる (他のクラスの証拠の) 場所です。"
        "知りたいのはクラス c を支持する場所なので、正の部分だけを残します。Grad-CAM の原論文は、ReLU を外すと"
        "マップが目的のクラス以外の場所まで示し、物体の位置を当てる性能が下がると報告しています。",
        choices={"a": "勾配消失を防いで、逆伝播で得た重み α_k^c を安定させるため",
                 "b": "マップの値を 0〜1 の範囲に収めて、そのまま画像に重ねられるようにするため",
                 "c": "負の値を 0 にするとマップが疎になり、計算が速くなるため",
                 "d": "負の場所は c のスコアを下げる側なので、c を支持する場所だけを残すため"},
        why_wrong={"a": "勾配消失はネットワークの学習の話です。Grad-CAM の ReLU は学習には関係しません。",
                   "b": "0〜1 に収めるのは、その後の正規化 (最大値で割る) の役目です。ReLU の出力に上限はありません。",
                   "c": "速さのためではありません。どの符号の影響を見せるかを決めています。"}),
    "q07": Question(
        "softmax の前のスコアを使う理由", "choice", "c",
        "∂p_c/∂A = p_c Σ_{j≠c} p_j (∂z_c/∂A − ∂z_j/∂A) で、Σ_{j≠c} p_j = 1 − p_c です。つまり確率の勾配は "
        "p_c(1−p_c) 倍に縮み、中身は『c のロジットの勾配 − 他クラスのロジットの勾配の p_j 重み付き平均』です。"
        "大きさが縮むだけならマップの正規化で消えますが、自信のある画像 (p_c → 1) では勾配が float32 の丸めに"
        "埋もれるほど小さくなり、しかも他クラスを下げる場所まで c の根拠に数えられます。そこでロジット y^c を微分します "
        "(レッスン 04 の 5 章で、300 枚の画像で測りました)。",
        choices={"a": "softmax は微分できない関数なので、その手前で止める必要があるから",
                 "b": "ロジットは 0〜1 に収まるので、マップを正規化しなくて済むから",
                 "c": "確率の勾配は p_c(1−p_c) 倍に縮み、中身も他クラスとの差になるから",
                 "d": "softmax の後では特徴マップの形が変わるので、勾配を空間方向に平均できないから"},
        why_wrong={"a": "softmax は滑らかで微分できます。問題は微分できるかではなく、勾配の大きさと中身です。",
                   "b": "0〜1 に収まるのは softmax の確率のほうです。ロジットは任意の実数です。",
                   "d": "softmax はクラスの軸にかかるだけで、特徴マップの形には関係しません。"}),
    "q08": Question(
        "どの層を説明するか", "choice", "b",
        "最後の畳み込み層は、クラスに関係する高レベルの特徴と、どこにあるかという空間の情報の両方を持つ最後の層です。"
        "浅い層は解像度は高いが輪郭などの低レベルの特徴、全結合層は空間の情報を失っています。",
        choices={"a": "最初の畳み込み層 (解像度が一番高く、細かい場所まで示せるから)",
                 "b": "最後の畳み込み層 (クラスに関わる特徴と空間の情報を両方持つから)",
                 "c": "最後の全結合層 (クラスの出力に一番近く、判断をそのまま表すから)",
                 "d": "softmax 層 (クラスごとの確率が出るので、根拠の強さが読めるから)"},
        why_wrong={"a": "浅い層の特徴は輪郭や明るさの変化で、クラスを区別する意味を持ちません (マップはクラスによらず似てきます)。",
                   "c": "全結合層の出力には高さ・幅の軸がないので、『どこ』を描けません。",
                   "d": "softmax の出力はクラスごとの数で、空間の情報がありません。"}),
    "q09": Question(
        "形: 特徴マップ A", "shape", (11, 11, 64),
        "28×28×1 → conv1 (3×3, valid) → 26×26×32 → MaxPool → 13×13×32 → conv2 (3×3, valid) → 11×11×64。",
        why_wrong={(13, 13, 64): "conv2 は padding='valid' の 3×3 畳み込みなので、13×13 から 2 画素小さくなります。",
                   (26, 26, 32): "それは conv1 の出力です。MaxPool と conv2 を通した後の形を求めます。",
                   (5, 5, 64): "それは conv2 の後の MaxPool (pool2) の出力です。Grad-CAM は conv2 の出力を使います。",
                   (64, 11, 11): "Keras は channels-last です: (高さ, 幅, チャンネル) の順に答えてください。"},
        hint="valid の 3×3 畳み込みは 1 辺を 2 小さくし、2×2 の MaxPool は 1 辺を半分 (切り捨て) にします。"),
    "q10": Question(
        "形: 重み α^c", "number", 64,
        "α^c はチャンネルごとに 1 つなので、要素数は K = 64 (1 クラス分)。マップは A (11×11×64) と α^c (64) の"
        "重み付き和で 11×11 になります。",
        why_wrong={121: "121 は平均を取る画素の数 Z です。重みはチャンネルごとに 1 つです。",
                   7744: "重みは画素ごとではなく、チャンネルごとに 1 つです。",
                   10: "10 はクラスの数です。1 クラス分の重みの数を答えてください。",
                   640: "1 クラス分 (α^c) の数を答えてください。10 クラス全部ではありません。"},
        hint="α_k^c の添字は k (チャンネル) だけです。"),
    "q11": Question(
        "穴埋め: Grad-CAM の重み", "fill", "b",
        "α_k^c は勾配の空間平均なので、高さと幅の軸 (1, 2) で平均し、画像ごと・チャンネルごとの (N, K) にします。"
        "手で計算すると、画像 0 の重みは (1, −1) でマップは ReLU(1·(1, 0) − 1·(0, 1)) = (1, 0)、"
        "画像 1 の重みは (−1, 1) でマップは ReLU(−1·(2, 0) + 1·(0, 3)) = (0, 3) です。",
        choices={"a": "grads.mean(axis=(0, 1, 2))",
                 "b": "grads.mean(axis=(1, 2))",
                 "c": "grads.max(axis=(1, 2))",
                 "d": "np.abs(grads).mean(axis=(1, 2))"},
        why_wrong={"a": "バッチ軸 0 まで平均すると、全画像で 1 組の重みを共有してしまいます (keras.io の例の書き方。レッスン 04 の修正 2)。",
                   "c": "重みは勾配の最大値ではなく平均 (1/Z)Σ_ij です。",
                   "d": "絶対値を取ると、スコアを下げる向きの勾配まで正の重みになり、クラスを支持しないチャンネルも強調されます。"},
        code=_GRADCAM_CODE, expected=[[[1.0, 0.0]], [[0.0, 3.0]]]),
    "q12": Question(
        "Grad-CAM++", "choice", "a",
        "Grad-CAM++ (Chattopadhay ら, WACV 2018) は、正の勾配に 2 階・3 階微分から求めた位置ごとの係数をかけて重みにします。"
        "同じクラスの物体が複数あるとき、1 つに偏らず全部を覆いやすくなると報告されています。",
        choices={"a": "正の勾配に、高次の微分から求めた位置ごとの係数をかけて重みにする",
                 "b": "勾配を使わず、特徴マップでマスクした入力のスコアでチャンネルの重みを決める",
                 "c": "重みを求めず、特徴マップの第 1 主成分をそのままマップにする",
                 "d": "入力画像についての勾配の絶対値を、そのままマップにする"},
        why_wrong={"b": "それは Score-CAM です。", "c": "それは Eigen-CAM です (クラスを区別しません)。",
                   "d": "それは Saliency (勾配のマップ) です。"}),
    "q13": Question(
        "Score-CAM", "choice", "c",
        "Score-CAM (Wang ら, CVPR-W 2020) は、各チャンネルの特徴マップを入力の大きさに拡大・正規化してマスクにし、"
        "マスクした入力でのクラスのスコアを重みにします。勾配は使いませんが、チャンネル数だけ順伝播が要るので遅くなります。",
        choices={"a": "ロジットの勾配を空間方向に平均し、チャンネルの重みにする",
                 "b": "学習時に GAP を入れておき、全結合の重みをそのまま使う",
                 "c": "特徴マップを拡大・正規化したマスクを入力にかけ、そのスコアを重みにする",
                 "d": "正の勾配に位置ごとの係数をかけて足し、チャンネルの重みにする"},
        why_wrong={"a": "それは Grad-CAM です。", "b": "それは CAM です。", "d": "それは Grad-CAM++ です。"}),
    "q14": Question(
        "Guided Grad-CAM", "choice", "d",
        "Guided Grad-CAM は、Guided Backpropagation の入力解像度のマップと、入力の大きさに拡大した Grad-CAM を画素ごとに掛けます。"
        "Grad-CAM のクラス識別性と、Guided Backprop の細かさを合わせる狙いです (Grad-CAM の原論文)。",
        choices={"a": "Grad-CAM を 2 つの層で計算し、拡大してから足し合わせる",
                 "b": "入力画像と、入力サイズに拡大した Grad-CAM を画素ごとに掛ける",
                 "c": "Guided Backprop のマップと、拡大した Grad-CAM を画素ごとに足して平均する",
                 "d": "Guided Backprop のマップと、拡大した Grad-CAM を画素ごとに掛ける"},
        why_wrong={"a": "複数の層のマップを合わせる手法もありますが、Guided Grad-CAM ではありません。",
                   "b": "それは重ね合わせの表示に近いもので、Guided Backprop の勾配を使っていません。",
                   "c": "足すのではなく掛けます (両方が大きいところだけが残る)。"}),
    "q15": Question(
        "Sanity Checks", "choice", "a",
        "Adebayo ら「Sanity Checks for Saliency Maps」(NeurIPS 2018) は、出力に近い層から順に重みをランダムにしていくと、"
        "勾配や Grad-CAM のマップは大きく変わるのに、Guided Backprop (と、それを掛ける Guided Grad-CAM) のマップは"
        "上の層をランダムにしてもほとんど変わらないことを示しました。Guided Backprop は何も反映しないのではなく、"
        "下の層の特徴と入力の輪郭は写しますが、クラスの情報を持つ上の層の重みを反映していません (エッジ検出に近い)。"
        "ラベルをシャッフルして学習したモデルでも、同じ傾向でした。このコースではレッスン 09 で、同じ実験を確かめます。",
        choices={"a": "出力に近い層から重みをランダムにしても、Guided Backprop のマップはほぼ変わらなかった",
                 "b": "調べたすべての手法で、重みをランダムにするとマップが大きく変わった (すべて合格)",
                 "c": "Grad-CAM のマップはほとんど変わらず、Guided Backprop のマップは大きく変わった",
                 "d": "重みをランダムにしても、どの手法のマップもほとんど変わらなかった"},
        why_wrong={"b": "すべてではありません。Guided Backprop と Guided Grad-CAM は、上の層をランダムにしてもほとんど変わりませんでした。",
                   "c": "逆です。変わらなかったのは Guided Backprop のほうです。",
                   "d": "勾配や Grad-CAM のマップは、重みをランダムにすると大きく変わりました。"}),
    # ------------------------------------------------ 判断根拠の可視化: Integrated Gradients
    "q16": Question(
        "Integrated Gradients のベースライン", "choice", "b",
        "IG_i(x) = (x_i − x'_i) ∫_0^1 ∂F(x' + α(x − x'))/∂x_i dα (Sundararajan ら「Axiomatic Attribution for Deep "
        "Networks」, ICML 2017)。x' はベースライン (『情報がない』とみなす基準の入力: 黒画像、ぼかした画像、ノイズ、"
        "データの平均など) で、x' から x までの直線に沿って勾配を積分します。",
        choices={"a": "入力 x でのスコアの勾配 (積分の中身のほう)",
                 "b": "ベースライン (黒画像など、情報がないとみなす基準の入力)",
                 "c": "学習データの平均画像 (IG ではそれ以外は使えない)",
                 "d": "モデルを間違えさせるように作った敵対的サンプル"},
        why_wrong={"a": "x' は入力と同じ形の画像です。勾配は積分の中身のほうです。",
                   "c": "平均画像も使えますが、黒画像・ぼかし・ノイズなど選び方は自由で、『それ以外は使えない』わけではありません。",
                   "d": "ベースラインは予測の根拠がない基準点で、敵対的サンプルではありません。"}),
    "q17": Question(
        "Integrated Gradients の完全性", "number", 7.0,
        "完全性 (completeness): Σ_i IG_i(x) = F(x) − F(x')。7.5 − 0.5 = 7.0 です。"
        "このレッスンの 3.3 では MNIST の CNN で、数値積分した IG がこの等式を満たすことを確かめました。",
        why_wrong={7.5: "F(x) そのものではなく、ベースラインとの差 F(x) − F(x') に分配されます。",
                   8.0: "足すのではなく、F(x) から F(x') を引きます。",
                   -7.0: "向きが逆です: F(x) − F(x')。"},
        hint="Σ_i IG_i(x) = F(x) − F(x') です。"),
    "q18": Question(
        "黒のベースラインと背景", "number", 0.0,
        "IG_i は (x_i − x'_i) を掛けるので、ベースラインと同じ値の画素 (MNIST の背景 0 と黒のベースライン 0) は、"
        "勾配がいくら大きくても IG がちょうど 0 になります。『黒い画素は重要になりえない』という、ベースラインの選び方の限界です。",
        why_wrong={},
        hint="IG_i の式の最初の因数 (x_i − x'_i) は、背景の画素ではいくつですか？"),
    "q19": Question(
        "IG の公理: 感度", "number", 1.0,
        "感度 (sensitivity) の公理: 入力とベースラインで 1 つの特徴量だけが違い、予測も違うなら、その特徴量の寄与は 0 で"
        "あってはいけません。F(2) − F(0) = 1 − 0 = 1 なのに、x = 2 での勾配は 0 (飽和) なので、勾配 (Saliency) や"
        "勾配 × 入力はこの公理を破ります。IG は経路 x' + α(x − x') = 2α に沿って積分します: 2α < 1 (α < 1/2) では"
        "F' = 1、それより先は 0 なので、IG = (2 − 0) × 1/2 = 1。完全性どおり F(x) − F(x') = 1 になります。"
        "この例は IG の原論文 (Sundararajan ら, ICML 2017) のものです。",
        why_wrong={0.0: "それは x = 2 での勾配 (Saliency) です。飽和した点の勾配は 0 なので、感度の公理を破ります。"
                        "IG はベースラインからの経路全体で勾配を積分します。",
                   2.0: "経路の全体で勾配が 1 なのではありません。F(x) = 1 − ReLU(1 − x) は x ≥ 1 で飽和し、勾配は 0 です。",
                   0.5: "(x − x') = 2 を掛け忘れています: IG = (x − x') × (経路上の勾配の平均) = 2 × 1/2。"},
        hint="IG = (x − x') × ∫_0^1 F'(x' + α(x − x')) dα です。経路上で F' が 1 なのは、どの α の範囲ですか？"),
    "q20": Question(
        "IG の公理: 実装不変性", "choice", "a",
        "実装不変性 (implementation invariance): すべての入力で同じ出力を返す (関数として等しい) 2 つのネットワークには、"
        "中の作りが違っても同じ寄与を与えるべき、という公理です。勾配は関数だけで決まる (連鎖律は実装によらない) ので、"
        "勾配だけを使う IG はこれを満たします。DeepLIFT や LRP のように、層ごとの離散的な規則で逆伝播する方法は破ることがあります。"
        "IG の残りの公理は、感度 (問 19) と、完全性 (問 17) などです。",
        choices={"a": "すべての入力で同じ出力を返す 2 つのネットワークには、作りが違っても同じ寄与を与える",
                 "b": "入力とベースラインで 1 つの特徴量だけが違い、予測も違うなら、その寄与は 0 にならない",
                 "c": "全特徴量の寄与の和が、F(x) − F(x') にちょうど等しくなる",
                 "d": "Keras で実装しても PyTorch で実装しても、同じ計算時間で求められる"},
        why_wrong={"b": "それは感度 (sensitivity) の公理です (問 19)。",
                   "c": "それは完全性 (completeness) です (問 17)。",
                   "d": "計算時間の話ではありません。『実装』は、同じ関数を表すネットワークの作り (層や重み) の違いのことです。"}),
    "q21": Question(
        "穴埋め: IG のリーマン和", "fill", "c",
        "IG_i = (x_i − x'_i) × (経路上の勾配の平均)。中点の m 点で平均すると、勾配が経路に沿って 1 次式の"
        "この F では積分と一致します: IG_0 = 0.5 × 2·0.75 = 0.75 (= 1² − 0.5²)、IG_1 = 1 × 3 = 3。"
        "和 3.75 は F(x) − F(x') = 7 − 3.25 に等しく、完全性が成り立ちます。",
        choices={"a": "x * grads.mean(axis=0)",
                 "b": "(x - x_base) * grads.sum(axis=0)",
                 "c": "(x - x_base) * grads.mean(axis=0)",
                 "d": "(x - x_base) * grad_F(x)"},
        why_wrong={"a": "掛けるのは x ではなく (x − x') です。ベースラインが 0 でないと結果が変わります。",
                   "b": "積分 ∫_0^1 dα の近似は和ではなく平均 (和 × 1/m) です。m 倍大きくなります。",
                   "d": "それは入力 x での勾配だけを使った『勾配 × (x − x')』で、経路の途中の勾配を使っていません。"},
        code=_IG_CODE, expected=[0.75, 3.0]),
    # ------------------------------------------------ モデルの近似: 局所と大域, LIME, SHAP, Shapley 値
    "q22": Question(
        "局所的な解釈と大域的な解釈", "choice", "d",
        "局所的な解釈は 1 つの入力の予測を説明し、大域的な解釈はモデル全体の振る舞いを説明します。"
        "データ全体で平均した SHAP 値の絶対値はモデル全体での特徴量の重要度なので大域的です。"
        "1 枚の画像の Grad-CAM、LIME、1 人の SHAP の説明はどれも局所的です。",
        choices={"a": "ある 1 枚の画像について、LIME で求めたスーパーピクセルの寄与",
                 "b": "ある 1 枚の画像について、Grad-CAM で求めたマップ",
                 "c": "ある 1 人の融資審査の結果について、SHAP で求めた各特徴量の寄与",
                 "d": "テストデータ全体で平均した |SHAP 値| による、特徴量の重要度"},
        why_wrong={"a": "1 つの入力の近くで代理モデルを当てはめるので、局所的な解釈です。",
                   "b": "1 枚の画像の判断の根拠なので、局所的な解釈です。",
                   "c": "1 人の予測の説明なので、局所的な解釈です (SHAP 値を全データで集めると大域的になります)。"}),
    "q23": Question(
        "LIME", "choice", "b",
        "LIME (Ribeiro ら「\"Why Should I Trust You?\": Explaining the Predictions of Any Classifier」, KDD 2016) は、"
        "説明したい入力の周りで入力を摂動したサンプル (画像ならスーパーピクセルの ON/OFF) を作り、"
        "元の入力に近いサンプルほど大きな重みで、解釈しやすい線形モデルを当てはめます (局所的な代理モデル)。"
        "線形モデルの係数が、各スーパーピクセルの寄与です。",
        choices={"a": "学習済みモデルの重みを直接読み取って、重みの大きい特徴量ほど重要だとみなす",
                 "b": "入力の近くで摂動したサンプルに、近さで重みを付けて線形モデルを当てはめる",
                 "c": "全データで決定木を学習し、モデル全体の振る舞いをまねる",
                 "d": "ベースラインから入力までの直線に沿って、勾配を積分する"},
        why_wrong={"a": "LIME はモデルの中身を見ません (モデルに依存しない方法)。入力と出力だけを使います。",
                   "c": "それは大域的な代理モデルです (問 38)。LIME は 1 つの入力の近くだけをまねます。",
                   "d": "それは Integrated Gradients です。"}),
    "q24": Question(
        "LIME の目的関数", "choice", "c",
        "LIME の目的関数 ξ(x) = argmin_{g∈G} L(f, g, π_x) + Ω(g) で、L = Σ_z π_x(z)(f(z) − g(z'))² は、"
        "近さ π_x(z) (例: exp(−D(x, z)²/σ²)、局所性のカーネル) で重み付けした、f と代理モデル g の食い違いです。"
        "Ω(g) は g の複雑さ (使う特徴量の数など) への罰則で、人が読める簡単さを保ちます。G は解釈可能な表現 z' "
        "(問 25) の上の線形モデルなどです。近くで f に忠実であることと、簡単さの釣り合いを取る式です。",
        choices={"a": "π_x: データ全体で一様な重み、Ω(g): g の複雑さへの罰則",
                 "b": "π_x: x での f の勾配、Ω(g): g の予測と正解ラベルの誤差",
                 "c": "π_x: x に近いサンプルほど大きい重み、Ω(g): g の複雑さへの罰則",
                 "d": "π_x: x に近いサンプルほど大きい重み、Ω(g): g の予測と f(x) の差"},
        why_wrong={"a": "一様な重みでは局所的になりません。π_x は x の近くのサンプルを重くする局所性のカーネルです。",
                   "b": "LIME は勾配を使いません。また g が合わせる相手は正解ラベルではなく、モデル f の出力です。",
                   "d": "f との食い違いは L の側で測ります。Ω(g) は g を簡単に保つ (複雑さへの) 罰則です。"}),
    "q25": Question(
        "LIME の解釈可能な表現", "choice", "a",
        "LIME は、モデルの入力 (784 個の画素の値) ではなく、人が読める単位の有無を表す 0/1 のベクトル z' の上で"
        "線形モデルを当てはめます。画像ならスーパーピクセル (似た画素のまとまり) ごとに、1 = 元のまま、0 = 消す "
        "(このレッスンでは 0 で塗る) です。文章なら単語の有無です。係数は『そのまとまりがあると予測がどれだけ増えるか』と読めます。",
        choices={"a": "スーパーピクセルごとに、元のままか消したかを表す 0/1 のベクトル",
                 "b": "784 個の画素の値そのもの (0〜1 の実数のベクトル)",
                 "c": "最後の畳み込み層の特徴マップの、チャンネルごとの平均",
                 "d": "学習データの画像で求めた、主成分分析 (PCA) の係数"},
        why_wrong={"b": "画素 1 つ 1 つの係数は人が読めず、784 次元ではサンプルも足りません。LIME はまとまりの有無を使います。",
                   "c": "LIME はモデルの中 (特徴マップ) を見ません。入力と出力だけを使う方法です。",
                   "d": "主成分の係数は人が読める単位ではありません。LIME の表現は、元の入力の部分の有無です。"}),
    "q26": Question(
        "SHAP", "choice", "d",
        "SHAP (Lundberg & Lee「A Unified Approach to Interpreting Model Predictions」, NeurIPS 2017) は、特徴量を協力ゲームの"
        "プレイヤー、予測値を報酬とみなし、Shapley 値で予測を特徴量に分配します。φ_0 (基準の予測) + Σ_i φ_i = f(x) "
        "が成り立ちます (局所的な正確さ、問 27)。",
        choices={"a": "ランダムに選んだ特徴量について、勾配の平均を重要度とする",
                 "b": "特徴量を 1 つずつ取り除いたときの、予測の下がり方だけで重要度を決める",
                 "c": "最後の畳み込み層の特徴マップを、勾配で重み付けして足す",
                 "d": "特徴量をプレイヤーとみなし、予測値を Shapley 値で分配する"},
        why_wrong={"a": "SHAP の中心は Shapley 値です。GradientExplainer は勾配を使いますが、Shapley 値を近似する手段にすぎません (問 30)。",
                   "b": "1 つずつ取り除くだけでは、特徴量の組み合わせ (相互作用) が考慮されません。Shapley 値はすべての組み合わせでの貢献を平均します。",
                   "c": "それは Grad-CAM です。"}),
    "q27": Question(
        "SHAP の局所的な正確さ", "number", 0.25,
        "局所的な正確さ (local accuracy): φ_0 + φ_1 + φ_2 + φ_3 = f(x)。0.30 + 0.20 + (−0.10) + φ_3 = 0.65 なので "
        "φ_3 = 0.65 − 0.40 = 0.25 です。SHAP 値は『基準の予測から、この入力の予測までの差』を特徴量に分けたものです。",
        why_wrong={0.55: "φ_0 (基準の予測) を忘れています。f(x) = φ_0 + Σ_i φ_i です。",
                   0.05: "φ_2 = −0.10 は負の値です。引くのではなく、符号ごと足します。",
                   0.65: "それは予測値 f(x) そのものです。φ_3 は f(x) から φ_0 と他の φ_i を引いた残りです。"},
        hint="f(x) = φ_0 + φ_1 + φ_2 + φ_3 を φ_3 について解いてください。"),
    "q28": Question(
        "SHAP の性質: 一貫性", "choice", "c",
        "Lundberg & Lee (2017) の 3 つの性質: (1) 局所的な正確さ: φ_0 + Σ φ_i = f(x)。(2) 欠損性 (missingness): "
        "簡略化した入力で欠けている特徴量 (x'_i = 0) の値は 0。(3) 一貫性 (consistency): モデルを f から f' に変えて、"
        "特徴量 i の限界貢献がどの組み合わせでも減らないなら、i の SHAP 値も減らない。この 3 つを満たす加法的な説明は "
        "Shapley 値だけだ、というのが SHAP の論文の主張です。",
        choices={"a": "SHAP 値の和に基準値 φ_0 を足すと、その入力に対する予測値にちょうど一致する",
                 "b": "簡略化した入力で欠けている特徴量 (x'_i = 0) の値は 0 になる",
                 "c": "モデルを変えて i の限界貢献がどの組でも減らないなら、i の値も減らない",
                 "d": "同じ入力を何度説明しても、サンプリングによらず同じ値が返る"},
        why_wrong={"a": "それは局所的な正確さ (local accuracy) です。",
                   "b": "それは欠損性 (missingness) です。",
                   "d": "SHAP の性質ではありません。KernelSHAP のようにサンプリングで近似する実装では、値が乱数で少し変わります。"}),
    "q29": Question(
        "KernelSHAP・TreeSHAP・DeepSHAP", "choice", "b",
        "TreeSHAP (Lundberg ら, Nature Machine Intelligence 2020) は、決定木の構造 (分岐と葉のデータ数) を使って、"
        "2^n 通りの組み合わせを数えずに厳密な SHAP 値を多項式時間で求めます。KernelSHAP はどんなモデルにも使えますが "
        "(入力と出力だけを使う)、組み合わせのサンプリングと重み付き回帰による近似で遅い。DeepSHAP (DeepLIFT の規則) と "
        "GradientSHAP (勾配) はニューラルネット用で、微分できない決定木には使えません。",
        choices={"a": "KernelSHAP: 特徴量の組み合わせをサンプリングし、重み付き線形回帰で解く",
                 "b": "TreeSHAP: 木の構造をたどって、組み合わせを数えずに厳密な値を求める",
                 "c": "DeepSHAP: DeepLIFT の規則で、ニューラルネットの層を逆向きにたどる",
                 "d": "GradientSHAP: 背景データを基準に、入力についての勾配を平均する"},
        why_wrong={"a": "KernelSHAP は木にも使えますが、サンプリングによる近似で、特徴量が多いと遅くなります。木には厳密で速い TreeSHAP があります。",
                   "c": "DeepSHAP はニューラルネットの層の規則を使う方法で、決定木には使えません。",
                   "d": "GradientSHAP は勾配を使うので、微分できない決定木には使えません。"}),
    "q30": Question(
        "shap.GradientExplainer", "choice", "a",
        "GradientExplainer は expected gradients (IG の拡張) を計算します: 背景データから選んだ画像をベースラインにし、"
        "経路上のランダムな点で勾配を求めて (x − x') を掛け、ベースラインと点について平均します。和は "
        "f(x) − E[f(背景)] に近づきます。モデルの勾配を使う (中を見る) 方法で、入力と出力だけを使う KernelSHAP とは違います。"
        "このレッスンの 4.2 では両方を使いました。",
        choices={"a": "背景データの画像を基準にした IG を、基準と経路上の点について平均する",
                 "b": "入力と出力だけを使い、組み合わせを重み付きの線形回帰で解く",
                 "c": "決定木の分岐をたどって、すべての組み合わせの寄与を厳密に数える",
                 "d": "最後の畳み込み層の特徴マップを、ロジットの勾配で重み付けして足す"},
        why_wrong={"b": "それは KernelSHAP (モデルを箱として扱う方法) です。GradientExplainer はモデルの勾配を使います。",
                   "c": "それは TreeSHAP です。",
                   "d": "それは Grad-CAM です。"}),
    "q31": Question(
        "Shapley 値の計算", "number", 18.0,
        "3 人の並び順 6 通りで A の限界貢献を平均します: ABC 12, ACB 12, BAC 24−6=18, BCA 36−12=24, CAB 18−0=18, "
        "CBA 36−12=24 → 108/6 = 18。公式 φ_A = Σ_S |S|!(n−|S|−1)!/n! (v(S∪{A}) − v(S)) でも "
        "(2/6)·12 + (1/6)·18 + (1/6)·18 + (2/6)·24 = 18。B は 12、C は 6 で、合計 36 = v({A,B,C}) (効率性)。",
        why_wrong={12.0: "v({A}) = 12 (A が最初に来る並び順の貢献) だけです。すべての並び順で平均してください (または 36 を 3 等分していませんか？)。",
                   24.0: "A が最後に来る並び順の貢献だけです。6 通りすべての並び順で平均してください。"},
        hint="6 通りの並び順のそれぞれで、A が加わったときの増分 v(S∪{A}) − v(S) を求めて平均します。"),
    "q32": Question(
        "Shapley 値の性質", "choice", "d",
        "Shapley 値は効率性・対称性・ナルプレイヤー・加法性を満たす唯一の分け方です (Shapley, 1953)。"
        "ナルプレイヤー (どの組にも何も加えない人) は 0 です。似た言葉のダミー (どの組にもちょうど v({i}) を加える人) は "
        "v({i}) を受け取り、ナルプレイヤーは v({i}) = 0 のダミーにあたります。『v({i}) 以上』(個人合理性) は、"
        "組むと値が増える (優加法的な) ゲームでは成り立ちますが、いつもではありません: v({A}) = v({B}) = v({A,B}) = 10 なら "
        "φ_A = φ_B = 5 < 10 です。",
        choices={"a": "効率性: 全員の Shapley 値の和は v(全員) − v(∅) に等しい",
                 "b": "対称性: どの組に加わっても同じだけ増やす 2 人は、同じ値になる",
                 "c": "ナルプレイヤー: どの組に加わっても値を増やさない人は 0 になる",
                 "d": "個人合理性: 各人の値は、単独で得られる値 v({i}) 以上になる"},
        why_wrong={"a": "効率性は Shapley 値の性質です (SHAP では φ_0 + Σφ_i = f(x) にあたります)。",
                   "b": "対称性は Shapley 値の性質です。",
                   "c": "ナルプレイヤーの性質は成り立ちます。似た言葉のダミー (どの組にもちょうど v({i}) を加える人) は v({i}) を受け取り、"
                        "ナルプレイヤーは v({i}) = 0 のダミーです。"}),
    "q33": Question(
        "厳密な Shapley 値の計算量", "number", 1024,
        "Shapley 値は部分集合 S ごとの v(S) で決まるので、すべての部分集合 2^10 = 1,024 通りの v を求めれば、"
        "全員の値が厳密に計算できます (並び順 10! 通りで平均しても同じ値ですが、v の評価は 2^n 通りで足ります)。"
        "n が増えると 2^n は爆発します: 特徴量 20 個で約 100 万、MNIST の 784 画素では 2^784 ≈ 10^236。"
        "そのため KernelSHAP は組み合わせをサンプリングし、TreeSHAP は木の構造を使い、画像では画素をまとめて"
        "(スーパーピクセル) プレイヤーの数を減らします。このレッスンの 5 章で確かめます。",
        why_wrong={3628800: "10! = 3,628,800 は並び順の数です。v は部分集合だけで決まるので、評価は 2^10 通りで足ります。",
                   512: "2^9 = 512 は、1 人を除いた残りの部分集合の数です。全員分には、その人を含む組も含めた 2^10 通りの v が要ります。",
                   100: "10^2 ではありません。各特徴量が『入る・入らない』の 2 通りなので 2^10 です。",
                   1023: "空集合 (v(∅) = 基準の予測) も数えます。"},
        hint="10 個の特徴量のそれぞれが、組に『入る・入らない』の 2 通りです。"),
    "q34": Question(
        "Shapley 値のサンプリング近似", "number", 1600,
        "並び順を M 個ランダムに選んで限界貢献を平均する推定は不偏で、標準誤差は 1/√M に比例します。"
        "標準誤差を 0.2 → 0.05 (1/4) にするには √M を 4 倍、M を 16 倍: 100 × 16 = 1,600。誤差を 1 桁小さくするには "
        "100 倍の計算が要ります。このレッスンの 5 章で、実際に標準誤差が 1/√M で減ることを測ります。",
        why_wrong={400: "標準誤差は M ではなく √M に反比例します。1/4 にするには M を 4 倍ではなく 16 倍にします。",
                   200: "標準誤差は 1/√M に比例します。1/4 にするには M を 16 倍にします。",
                   25: "サンプルを増やすと誤差は減ります。M を増やす向きです。"},
        hint="標準誤差は 1/√M に比例します。0.2 を 0.05 にするには、√M を何倍にしますか？"),
    "q35": Question(
        "穴埋め: Shapley 値の重み", "fill", "a",
        "S の重みは、n! 通りの並び順のうち『S の全員が先に、i が次に、残りが後に』来る割合 |S|!(n−|S|−1)!/n! です。"
        "手で計算すると、A (2 票) は並び順 6 通りのうち 4 通りで勝ちを決める (ピボット) ので 4/6 = 2/3、B と C は 1/6 ずつ。"
        "合計 1 = v(全員) (効率性) です。",
        choices={"a": "math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)",
                 "b": "math.factorial(size) * math.factorial(n - size) / math.factorial(n)",
                 "c": "math.factorial(size + 1) * math.factorial(n - size - 1) / math.factorial(n)",
                 "d": "math.comb(n - 1, size) / 2 ** (n - 1)"},
        why_wrong={"b": "i の後に来るのは n − |S| − 1 人です (i 自身を数えない)。重みの合計が 1 にならず、効率性が崩れます。",
                   "c": "S の人の並べ方は |S|! 通りです (i を含めない)。",
                   "d": "各部分集合を同じ重みで数えることになり、それは Banzhaf 値に近いものです。合計が v(全員) にならず、Shapley 値ではありません。"},
        code=_SHAPLEY_CODE, expected=[2 / 3, 1 / 6, 1 / 6]),
    "q36": Question(
        "permutation feature importance", "choice", "c",
        "permutation feature importance (Breiman, 2001 のランダムフォレストで提案) は、学習済みモデルはそのままに、学習に使っていない"
        "データで 1 つの特徴量の列だけをシャッフルし、評価指標 (正解率や誤差) がどれだけ悪くなるかを測ります。"
        "モデル全体についての大域的な説明で、モデルに依存しません。相関の強い特徴量があると、シャッフルで現実にない組み合わせが"
        "生まれ、重要度が割れたり過大になったりする点に注意します。scikit-learn の `sklearn.inspection.permutation_importance` "
        "で計算でき、レッスン 14 で扱います。",
        choices={"a": "特徴量を 1 つ除いてからモデルを学習し直し、評価指標がどれだけ変わるかを測る",
                 "b": "1 件の入力で特徴量を基準値に置き換え、その予測の変化を測る",
                 "c": "学習済みモデルのまま、評価用データの 1 列だけを並べ替えて指標の悪化を測る",
                 "d": "決定木の分岐で不純度が減った量を、特徴量ごとに足し合わせる"},
        why_wrong={"a": "それは drop-column importance です。学習し直すのは重く、元のモデルではなく別のモデルを比べることになります。",
                   "b": "1 件の入力についての変化は局所的な説明です (遮蔽や摂動による方法)。PFI はデータ全体で測ります。",
                   "d": "それは不純度にもとづく重要度 (MDI) で、決定木専用です。学習データで測るので過大になることがあります。"}),
    "q37": Question(
        "PD と ICE", "choice", "b",
        "PD (partial dependence, Friedman 2001) は、特徴量 x_S をある値に固定して、他の特徴量はデータのままにした予測を"
        "全データで平均した曲線 (大域的)。ICE (individual conditional expectation, Goldstein ら 2015) は、その平均を取る前の"
        "1 件ごとの曲線です。人によって逆向きに効く (相互作用がある) と PD では打ち消し合って平らに見えますが、ICE では見えます。"
        "どちらも、その特徴量だけを他と独立に動かせると仮定しています。レッスン 14 で扱います。",
        choices={"a": "PD は 1 件ごとの曲線で、ICE は全データで平均した 1 本の曲線",
                 "b": "ICE は 1 件ごとの曲線で、PD はその平均。平均で消える効果は ICE で見える",
                 "c": "PD も ICE も 1 件の入力の局所的な説明で、データ全体には使えない",
                 "d": "PD は特徴量を変えたときの正解率の変化、ICE は損失の変化を描く"},
        why_wrong={"a": "逆です。ICE が 1 件ごとの曲線、PD がその平均です。",
                   "c": "PD はデータ全体で平均するので大域的です。ICE も全データの曲線を重ねて見ます。",
                   "d": "どちらも描くのはモデルの予測 (出力) です。正解率や損失ではありません。"}),
    "q38": Question(
        "大域的な代理モデル", "choice", "d",
        "大域的な代理モデル (global surrogate) は、元のモデルの予測を目的変数にして、決定木や線形モデルのような読めるモデルを"
        "学習します。正解ラベルではなく元のモデルをまねるので、読む前に、元のモデルの予測との一致度 (忠実度: 一致率や R²) を"
        "学習に使っていないデータで確かめます。一致度が低い代理モデルの規則は、元のモデルの説明になりません。レッスン 14 で扱います。",
        choices={"a": "正解ラベルで決定木を学習し、正解率が同じなら、その規則を元のモデルの規則とみなす",
                 "b": "1 つの入力の近くでサンプリングし、近さで重みを付けた線形モデルを当てはめる",
                 "c": "元のモデルの小さい重みを枝刈りして、残った重みを説明としてそのまま読む",
                 "d": "元のモデルの予測を目的変数にして木などを学習し、予測との一致度を確かめて読む"},
        why_wrong={"a": "正解ラベルで学習した木は、元のモデルではなくデータをまねます。正解率が同じでも、同じ入力で同じ予測をするとは限りません。",
                   "b": "それは LIME (局所的な代理モデル) です。大域的な代理モデルはデータ全体でまねます。",
                   "c": "枝刈りはモデルを小さくする方法で、残った重みが人に読めるわけではありません。"}),
    # ------------------------------------------------ アテンション、反実仮想、セグメンテーション・検出
    "q39": Question(
        "アテンションは説明か", "choice", "a",
        "Jain & Wallace「Attention is not Explanation」(NAACL 2019) は、アテンションの重みが勾配や leave-one-out による重要度と"
        "あまり相関しないこと、重みを大きく入れ替えても同じ予測になる分布が見つかることを示しました。Wiegreffe & Pinter"
        "「Attention is not not Explanation」(EMNLP 2019) は、それで説明としての価値が否定されるわけではなく、『説明』の定義と"
        "検証の方法 (一様な重みとの比較、乱数シードによるばらつき、学習し直した敵対的な重み) しだいだと反論しました。"
        "重みは『どこから情報を集めたか』であって、そのまま判断の根拠とは限らない、というのが試験での要点です。"
        "ViT のアテンションのマップはレッスン 13 で扱います。",
        choices={"a": "重みを大きく入れ替えても予測が変わらない例があり、重みがそのまま根拠とは限らない",
                 "b": "重みは出力への寄与そのものなので、重みの大きい順が根拠の強い順だと証明されている",
                 "c": "Jain & Wallace (2019) は、重みが勾配による重要度と常に一致することを示した",
                 "d": "アテンションの重みは CNN 専用の量で、Transformer のモデルでは可視化できない"},
        why_wrong={"b": "そのような証明はありません。重みの後には値ベクトル、残差接続、MLP があり、重みだけでは出力への寄与が決まりません。",
                   "c": "逆です。勾配による重要度との相関が低いことを示しました。",
                   "d": "アテンションは Transformer の仕組みです。ViT では [CLS] から各パッチへの重みを画像に重ねて可視化します (問 41)。"}),
    "q40": Question(
        "穴埋め: attention rollout", "fill", "d",
        "attention rollout (Abnar & Zuidema「Quantifying Attention Flow in Transformers」, ACL 2020) は、残差接続の分として"
        "単位行列を足して 0.5A + 0.5I とし、行の和を 1 に戻してから、層の順に掛け合わせます。手で計算すると、"
        "1 層目 [[1, 0], [0.25, 0.75]]、2 層目 [[0.75, 0.25], [0, 1]] で、2 層目 × 1 層目 = [[0.8125, 0.1875], [0.25, 0.75]]。"
        "rollout は情報がどこから流れてきたかを表すもので、クラスを区別しません (レッスン 13)。",
        choices={"a": "A",
                 "b": "(A + A.T) / 2",
                 "c": "(A * np.eye(T)) / 2",
                 "d": "(A + np.eye(T)) / 2"},
        why_wrong={"a": "残差接続 (トークンが自分自身の情報を次の層へそのまま渡す道) の分が抜けています。単位行列を足します。",
                   "b": "アテンションの行列は対称ではありません (行 = 受け取る側、列 = 送る側)。転置を足すと向きが混ざります。",
                   "c": "対角成分だけを残すと、トークンの間の情報の流れが消えてしまいます。"},
        code=_ROLLOUT_CODE, expected=[[0.8125, 0.1875], [0.25, 0.75]]),
    "q41": Question(
        "ViT のパッチの格子", "shape", (14, 14),
        "224 / 16 = 14 なので、パッチは 14 × 14 = 196 個、[CLS] を加えて 197 トークンです。[CLS] から各トークンへの"
        "注意の重み (197 個) から [CLS] 自身を除き、196 個を 14 × 14 に並べ直して、224 × 224 に拡大して重ねます "
        "(Dosovitskiy ら「An Image is Worth 16x16 Words」, ICLR 2021)。レッスン 13 で扱います。",
        why_wrong={(16, 16): "16 はパッチ 1 辺の画素数です。格子の 1 辺は 224 / 16 です。",
                   (196, 196): "それはパッチのトークン同士の注意の行列の形です。[CLS] からの 1 行 (196 個) を格子に並べます。",
                   (197, 197): "それは [CLS] を含む注意の行列全体の形です。[CLS] からの 1 行から [CLS] を除き、格子に並べます。"},
        hint="224 × 224 の画像を 16 × 16 のパッチに分けると、縦と横にいくつ並びますか？"),
    "q42": Question(
        "反実仮想説明", "choice", "b",
        "反実仮想説明 (Wachter ら「Counterfactual Explanations without Opening the Black Box: Automated Decisions and the GDPR」, 2017) は、"
        "予測を望む結果 y' に変える、元の入力 x に一番近い入力 x' を探します: argmin_{x'} max_λ λ(f(x') − y')² + d(x, x')。"
        "『借入があと 1.2 少なければ承認された』のように、何を変えれば結果が変わるかを答えます。モデルの中を見ずに求められ、"
        "変えられない特徴量 (年齢など) やデータとしてありえない値を避ける工夫が要ります。レッスン 14 で扱います。",
        choices={"a": "予測値を、各特徴量の寄与の和にどのように分けられるか",
                 "b": "入力をどこまで少し変えれば、予測が望む結果に変わるか",
                 "c": "モデルは画像のどの場所を見て、この判断をしたか",
                 "d": "モデル全体を、どのような単純な規則の集まりで近似できるか"},
        why_wrong={"a": "それは SHAP (Shapley 値による分配) が答える問いです。",
                   "c": "それは Grad-CAM などの判断根拠の可視化が答える問いです。",
                   "d": "それは大域的な代理モデルが答える問いです。"}),
    "q43": Question(
        "反実仮想を求める", "choice", "c",
        "1 つの特徴量だけで s を −4.0 から 0 に上げるのに要る変化は、年収 +4.0/2.0 = +2.0、借入 −4.0/1.5 ≈ −2.67、"
        "勤続年数 +4.0/1.0 = +4.0 です。絶対値が最も小さいのは年収 +2.0 (s = 2·3 − 1.5·2 + 1 − 4 = 0 で承認)。"
        "借入 −2.0 では s = −1.0 で届かず、借入 −4.0 と勤続年数 +4.0 は届きますが変化が大きすぎます。"
        "線形のモデルでは、|重み| が大きい特徴量ほど少しの変化で結果が変わります。",
        choices={"a": "勤続年数を +4.0 (5.0 にする)",
                 "b": "借入を −2.0 (0.0 にする)",
                 "c": "年収を +2.0 (3.0 にする)",
                 "d": "借入を −4.0 (−2.0 にする)"},
        why_wrong={"a": "承認には届きますが (s = 0)、変化 4.0 は年収 +2.0 より大きい変化です。",
                   "b": "s = 2·1 − 1.5·0 + 1 − 4 = −1.0 で、まだ否決です。借入だけなら −8/3 ≈ −2.67 の変化が要ります。",
                   "d": "承認には届きますが (s = 2.0)、変化 4.0 は必要以上に大きく、最も近い反実仮想ではありません。"}),
    "q44": Question(
        "セグメンテーションで説明するスカラー", "choice", "a",
        "Grad-CAM は 1 つのスカラーの勾配から作るので、セグメンテーションでは『説明したい領域 M の画素についての、クラス c の"
        "ロジットの和 (または平均)』を y^c とします (Seg-Grad-CAM: Vinogradova ら「Towards Interpretable Semantic Segmentation via "
        "Gradient-weighted Class Activation Mapping」, AAAI 2020)。物体検出なら、説明したい 1 つの検出枠のクラスのスコアを選びます。"
        "何を y^c に選ぶかで、マップが答える問いが変わります。レッスン 15 で扱います。",
        choices={"a": "説明したい領域の画素について、クラス c のロジットを足した値",
                 "b": "出力全体で、softmax の確率が一番大きい 1 画素の確率",
                 "c": "画像全体の、すべてのクラスのロジットを足した値",
                 "d": "その画像で計算した、学習時の損失関数 (交差エントロピー) の値"},
        why_wrong={"b": "1 画素だけでは領域の説明にならず、確率を使うと勾配が縮みます (問 7)。",
                   "c": "すべてのクラスを足すと、クラス c を区別するマップになりません。",
                   "d": "損失には正解ラベルが要り、説明したいのは予測の根拠です。クラス c のロジットを使います。"}),
    "q45": Question(
        "2 値分類の陰性クラス", "choice", "b",
        "出力が 1 つのロジット z で陽性の確率が sigmoid(z) のとき、陰性の確率は 1 − sigmoid(z) = sigmoid(−z) なので、"
        "陰性のロジットは −z です。−z を微分すると重み α_k の符号がすべて反転し、ReLU の前のマップ Σ_k α_k A^k も符号が"
        "反転します。ReLU が残すのは、陽性のマップで捨てられていた場所です。マルチラベル (ラベルごとに sigmoid) なら、"
        "各ラベルのロジットをそれぞれ微分します。レッスン 15 で扱います。",
        choices={"a": "z を微分してできたマップを、1 から引いて反転する",
                 "b": "−z (陰性のロジット) を微分して、同じ手順でマップを作る",
                 "c": "sigmoid の確率 p を微分して、同じ手順でマップを作る",
                 "d": "陽性のマップの値が小さい場所を、陰性の根拠として読む"},
        why_wrong={"a": "正規化したマップを 1 から引くと、陽性に使われなかった場所 (何もない背景も) がすべて明るくなります。陰性を支持する場所ではありません。",
                   "c": "p を微分すると勾配が p(1−p) 倍に縮み (問 7)、しかも陽性のための勾配のままです。",
                   "d": "陽性の値が小さい場所は『陽性を支持しない』だけで、『陰性を支持する』とは限りません。ReLU で負の部分は消えています。"}),
}


# --------------------------------------------------------------------- checking


def run_fill_in(qid: str, letter: str) -> np.ndarray:
    """Run the program of fill-in question ``qid`` with choice ``letter`` in the blank.

    Parameters
    ----------
    qid : a question of kind ``"fill"``
    letter : one of its choices, ``"a"`` to ``"d"``

    Returns
    -------
    numpy.ndarray, float64
        The program's ``result``.

    Raises
    ------
    KeyError
        If ``qid`` is not a fill-in question or ``letter`` not one of its choices.
    Exception
        Whatever the program raises with that fragment (a wrong fragment may not even run).
    """
    q = QUESTIONS.get(qid)
    if q is None or q.kind != "fill":
        raise KeyError(f"{qid!r} is not a fill-in question; they are "
                       f"{', '.join(k for k, v in QUESTIONS.items() if v.kind == 'fill')}")
    if letter not in q.choices:
        raise KeyError(f"{qid} has no choice {letter!r}; choices are {', '.join(q.choices)}")
    source = q.code.replace(BLANK, q.choices[letter], 1)
    scope: dict[str, Any] = {"np": np, "math": math, "itertools": itertools}
    exec(compile(source, f"<{qid} ({letter})>", "exec"), scope)
    return np.asarray(scope["result"], dtype=float)


def _fill_in_outcome(q: Question, qid: str, letter: str) -> tuple[bool, str]:
    """(whether the program with ``letter`` gives the expected result, a line saying what it gave)."""
    expected = np.asarray(q.expected, dtype=float)
    try:
        got = run_fill_in(qid, letter)
    except Exception as error:              # a wrong fragment may not run at all; say how it fails
        return False, f"この選択肢を入れて実行すると {type(error).__name__}: {error}"
    ok = got.shape == expected.shape and bool(np.allclose(got, expected, atol=1e-9))
    return ok, f"実行結果 result = {_array(got)} (期待する値 {_array(expected)})"


def _array(value: np.ndarray) -> str:
    return np.array2string(np.asarray(value, dtype=float), precision=4, separator=", ",
                           suppress_small=True).replace("\n", "")


def _normalise(q: Question, answer):
    if q.kind in ("choice", "fill"):
        if not isinstance(answer, str) or answer.strip().lower() not in q.choices:
            raise AssertionError(f"選択肢の記号 {', '.join(repr(k) for k in q.choices)} のどれかを文字列で"
                                 f"入れてください (例: \"{next(iter(q.choices))}\")。{answer!r} が入っています。")
        return answer.strip().lower()
    if q.kind == "number":
        if isinstance(answer, (bool, np.bool_)) or not isinstance(answer, (int, float, np.number)):
            raise AssertionError(f"数を 1 つ入れてください (例: 3 や 2.5)。{answer!r} が入っています。")
        return float(answer)
    try:
        return tuple(int(v) for v in answer)
    except (TypeError, ValueError):
        raise AssertionError("形は整数のタプルで入れてください (例: (28, 28, 1))。"
                             f"{answer!r} が入っています。") from None


def _matches(q: Question, given, expected) -> bool:
    if q.kind == "number":              # a count must be exact (1023 is not 1024); a fraction may be rounded
        rtol = 0.0 if float(expected).is_integer() else 1e-3
        return bool(np.isclose(given, float(expected), rtol=rtol, atol=1e-6))
    return given == expected


def check_answer(qid: str, answer) -> None:
    """Check the answer to question ``qid``; print 正解 and the worked explanation, or raise
    ``AssertionError`` saying why the answer is wrong.

    For a fill-in question the program is run with the chosen fragment, and its result is shown next
    to the expected one (in the explanation when right, in the error when wrong).
    """
    if qid not in QUESTIONS:
        raise KeyError(f"unknown question {qid!r}; questions are {', '.join(QUESTIONS)}")
    q = QUESTIONS[qid]
    if answer is None or answer is Ellipsis:
        raise AssertionError(f"{qid} ({q.topic}): まだ答えていません。answer_{qid} に答えを入れてから、"
                             "このセルを実行してください。")
    given = _normalise(q, answer)
    ran = ""
    if q.kind == "fill":
        ok, ran = _fill_in_outcome(q, qid, given)
        if ok != (given == q.answer):       # the table itself is wrong: say so, do not grade
            raise RuntimeError(f"{qid}: the program gives {'the expected' if ok else 'another'} result "
                               f"with choice {given!r}, but the right answer is {q.answer!r}")
        ran = f" ({ran})"
    if _matches(q, given, q.answer):
        shown = f"{_show(q.answer)}: {q.choices[q.answer]}" if q.kind == "fill" else _show(q.answer)
        print(f"{qid} ({q.topic}): 正解です！ 答え {shown}{ran}\n解説: {q.explanation}")
        return
    for wrong, why in q.why_wrong.items():
        value = _normalise(q, wrong) if q.kind in ("number", "shape") else wrong
        if _matches(q, given, value):
            raise AssertionError(f"{qid} ({q.topic}): {_show(answer)} は不正解です。{why}{ran}")
    raise AssertionError(f"{qid} ({q.topic}): {_show(answer)} は不正解です。"
                         f"{q.hint or 'もう一度考えてみましょう。'}{ran}")


def _show(value) -> str:
    return f"({value})" if isinstance(value, str) else repr(value)


# --------------------------------------------------------------------- balance of the question table


def _lettered(questions: Mapping[str, Question]) -> dict[str, Question]:
    return {qid: q for qid, q in questions.items() if q.kind in ("choice", "fill")}


def answer_shares(questions: Mapping[str, Question] = QUESTIONS) -> dict[str, float]:
    """Share of the lettered (choice and fill-in) questions whose right answer is each letter.

    Returns
    -------
    dict
        ``{letter: share in [0, 1]}`` for a–d; the shares sum to 1 (all 0 if there is no lettered
        question).
    """
    lettered = _lettered(questions)
    counts = Counter(q.answer for q in lettered.values())
    return {letter: counts[letter] / len(lettered) if lettered else 0.0 for letter in LETTERS}


def right_is_longest(q: Question) -> bool:
    """Whether the right option of a lettered question is at least as long (in characters) as every
    wrong one — a test-wise learner's cue."""
    right = len(q.choices[q.answer])
    return all(right >= len(text) for letter, text in q.choices.items() if letter != q.answer)


def longest_right_share(questions: Mapping[str, Question] = QUESTIONS) -> float:
    """Share in [0, 1] of the lettered questions whose right option is the longest (ties count)."""
    lettered = _lettered(questions)
    if not lettered:
        return 0.0
    return sum(right_is_longest(q) for q in lettered.values()) / len(lettered)
