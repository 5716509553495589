"""Answer checker for lesson 10 (the E資格 review): exam-style questions with worked explanations.

Each question of the lesson is answered in a variable (``answer_q01 = "b"``, ``answer_q04 = 121``,
``answer_q09 = (11, 11, 64)``) and checked with ``check_answer("q01", answer_q01)``:

* right — prints 正解 and the worked explanation;
* wrong — raises ``AssertionError`` saying why that answer is wrong (for each wrong choice, and for
  the usual slips in the numeric questions);
* not answered (``None``) or not a valid answer — raises ``AssertionError`` saying what to enter.

The choices' texts live here too (:data:`QUESTIONS`); a test checks that the notebook shows each
question with exactly these choices, so the notebook and the checker cannot drift apart.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Question:
    """One exam question.

    Attributes
    ----------
    topic : short topic name (shown with the result)
    kind : ``"choice"`` (answer a letter a–d), ``"number"`` or ``"shape"`` (a tuple of ints)
    answer : the right answer
    explanation : the worked explanation, shown when the answer is right
    choices : for ``"choice"``: ``{letter: text}``
    why_wrong : for ``"choice"``: ``{letter: why it is wrong}``; for ``"number"`` / ``"shape"``:
        ``{a usual wrong answer: what went wrong}``
    hint : shown for any other wrong answer
    """

    topic: str
    kind: str
    answer: Any
    explanation: str
    choices: dict = field(default_factory=dict)
    why_wrong: dict = field(default_factory=dict)
    hint: str = ""


QUESTIONS: dict[str, Question] = {
    "q01": Question(
        "CAM の式", "choice", "a",
        "GAP の後が全結合 1 層なら y^c = Σ_k w_k^c · (1/Z)Σ_ij A^k_ij = (1/Z)Σ_ij (Σ_k w_k^c A^k_ij)。"
        "スコアは M^c = Σ_k w_k^c A^k の空間平均なので、M^c はスコアを位置ごとに分けた地図になります。",
        choices={"a": "M^c = Σ_k w_k^c A^k",
                 "b": "M^c = Σ_k A^k",
                 "c": "M^c = softmax(Σ_k w_k^c A^k)",
                 "d": "M^c = Σ_c w_k^c A^k"},
        why_wrong={"b": "重みがないので、どのクラスでも同じ地図になります。クラス c の重み w_k^c でチャンネルを重み付けします。",
                   "c": "softmax はクラスの間でかけるもので、画素の間ではありません。CAM は特徴マップの線形結合そのものです。",
                   "d": "和を取るのはクラス c ではなくチャンネル k です (クラス c の地図を 1 枚作るため)。"}),
    "q02": Question(
        "CAM に GAP が必要な理由", "choice", "b",
        "GAP → 全結合 1 層なら、スコアは位置ごとの Σ_k w_k^c A^k_ij の平均と書けるので、全結合の重みを"
        "そのまま特徴マップに戻せます。Flatten → 全結合 2 層のモデルでは、この書き換えができません (レッスン 03)。",
        choices={"a": "GAP がないと学習が収束しないから",
                 "b": "GAP の直後が全結合 1 層なら、スコアが各位置の Σ_k w_k^c A^k の平均と書け、重みをそのまま特徴マップに戻せるから",
                 "c": "GAP が特徴マップの解像度を上げるから",
                 "d": "GAP を使うと softmax が要らなくなるから"},
        why_wrong={"a": "Flatten のモデルも普通に学習できます (レッスン 02)。問題は学習ではなく、重みを地図に戻せるかです。",
                   "c": "GAP は各チャンネルを 1 つの数 (1×1) に縮めます。解像度は上がりません。",
                   "d": "GAP の後にも softmax はあります。CAM は softmax の前のスコアの式を使います。"}),
    "q03": Question(
        "CAM と Grad-CAM の関係", "choice", "a",
        "y^c = Σ_k w_k^c (1/Z)Σ_ij A^k_ij を A^k_ij で微分すると w_k^c / Z。その空間平均 α_k^c も w_k^c / Z なので、"
        "Grad-CAM の地図は CAM の 1/Z 倍 (ReLU の後も正の定数倍) です。CAM が Grad-CAM を理解する鍵なのはこのためで、"
        "Grad-CAM は CAM の重みを『勾配』に置き換えて、どの構造のモデルにも使えるようにしたものです。",
        choices={"a": "α_k^c = w_k^c / Z となり、地図は正の定数倍を除いて一致する",
                 "b": "重みの求め方が違うので、地図には関係がない",
                 "c": "Grad-CAM の地図のほうが常に解像度が高い",
                 "d": "地図の符号が逆になる"},
        why_wrong={"b": "スコアを A^k_ij で微分すると w_k^c / Z になり、重みは比例します。このレッスンで数値でも確かめました。",
                   "c": "同じ層を使えば解像度 (h×w) は同じです。",
                   "d": "Z > 0 なので比例定数は正、符号は同じです。"}),
    "q04": Question(
        "Grad-CAM の重みの Z", "number", 121,
        "Z は特徴マップの画素の数 h × w = 11 × 11 = 121 で、α_k^c は勾配の空間平均です。チャンネル数 K=64 は平均に入りません。",
        why_wrong={11: "Z は 1 辺の長さではなく、画素の数 (高さ × 幅) です。",
                   64: "64 はチャンネル数 K です。平均は各チャンネルの中で、空間方向 (i, j) について取ります。",
                   7744: "h × w × K ではありません。チャンネルごとに、空間方向 (h × w) で平均します。",
                   169: "conv2 の出力は 13×13 ではなく、3×3 の valid 畳み込みで 2 画素小さくなり 11×11 です。"},
        hint="α_k^c = (1/Z)Σ_ij ∂y^c/∂A^k_ij は空間方向の平均です。conv2 の出力の高さと幅を掛けてください。"),
    "q05": Question(
        "Grad-CAM の地図の式", "choice", "a",
        "チャンネルの重み α_k^c で特徴マップ A^k を足し合わせ、最後に ReLU をかけます: L^c = ReLU(Σ_k α_k^c A^k)。",
        choices={"a": "L^c = ReLU(Σ_k α_k^c A^k)",
                 "b": "L^c = Σ_k ReLU(α_k^c) A^k",
                 "c": "L^c = ReLU(Σ_k α_k^c ∂y^c/∂A^k)",
                 "d": "L^c = softmax(Σ_k α_k^c A^k)"},
        why_wrong={"b": "ReLU をかけるのは重みではなく、足し合わせた後の地図です (負の重みのチャンネルも地図の形に効きます)。",
                   "c": "重みをかけるのは勾配ではなく特徴マップ A^k (活性) です。",
                   "d": "地図に softmax はかけません。正の部分を残す ReLU と、最大値で割る正規化です。"}),
    "q06": Question(
        "ReLU をかける理由", "choice", "a",
        "Σ_k α_k^c A^k が負の場所は、そこが強くなるとクラス c のスコアが下がる (他のクラスの証拠の) 場所です。"
        "知りたいのはクラス c を支持する場所なので、正の部分だけを残します。原論文では ReLU を外すと位置の精度が下がると報告されています。",
        choices={"a": "負の値は、強くなるとクラス c のスコアを下げる (他のクラスの証拠の) 場所なので、クラス c を支持する正の影響だけを残すため",
                 "b": "勾配消失を防ぐため",
                 "c": "値を 0〜1 に収めるため",
                 "d": "計算を速くするため"},
        why_wrong={"b": "勾配消失はネットワークの学習の話です。Grad-CAM の ReLU は学習には関係しません。",
                   "c": "0〜1 に収めるのは、その後の正規化 (最大値で割る) の役目です。ReLU の出力に上限はありません。",
                   "d": "速さのためではありません。どの符号の影響を見せるかを決めています。"}),
    "q07": Question(
        "softmax の前のスコアを使う理由", "choice", "a",
        "∂p_c/∂A = p_c Σ_{j≠c} p_j (∂z_c/∂A − ∂z_j/∂A) なので、確率の勾配は (1−p_c) 程度に縮み、"
        "中身も他クラスとの差になります。自信のある正解ほど勾配がほぼ 0 になるため、logit y^c を微分します (レッスン 04)。",
        choices={"a": "softmax の確率を使うと、自信のある画像ほど勾配が (1−p) 程度に縮み、他クラスとの差の勾配になるから",
                 "b": "softmax は微分できないから",
                 "c": "logit の値は 0〜1 に収まるから",
                 "d": "softmax の後では特徴マップの形が変わるから"},
        why_wrong={"b": "softmax は滑らかで微分できます。問題は微分できるかではなく、勾配の大きさと意味です。",
                   "c": "0〜1 に収まるのは softmax の確率のほうです。logit は任意の実数です。",
                   "d": "softmax はクラスの軸にかかるだけで、特徴マップの形には関係しません。"}),
    "q08": Question(
        "どの層を説明するか", "choice", "b",
        "最後の畳み込み層は、クラスに関係する高レベルの特徴と、どこにあるかという空間の情報の両方を持つ最後の層です。"
        "浅い層は解像度は高いが輪郭などの低レベルの特徴、全結合層は空間の情報を失っています。",
        choices={"a": "最初の畳み込み層 (解像度が一番高いから)",
                 "b": "最後の畳み込み層 (クラスに関係する高レベルの特徴と空間の情報の両方を持つから)",
                 "c": "最後の全結合層 (クラスに一番近いから)",
                 "d": "softmax 層 (確率が出るから)"},
        why_wrong={"a": "浅い層の特徴は輪郭や明るさの変化で、クラスを区別する意味を持ちません (地図はクラスによらず似てきます)。",
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
        "α^c はチャンネルごとに 1 つなので、要素数は K = 64 (1 クラス分)。地図は A (11×11×64) と α^c (64) の"
        "重み付き和で 11×11 になります。",
        why_wrong={121: "121 は平均を取る画素の数 Z です。重みはチャンネルごとに 1 つです。",
                   7744: "重みは画素ごとではなく、チャンネルごとに 1 つです。",
                   10: "10 はクラスの数です。1 クラス分の重みの数を答えてください。",
                   640: "1 クラス分 (α^c) の数を答えてください。10 クラス全部ではありません。"},
        hint="α_k^c の添字は k (チャンネル) だけです。"),
    "q11": Question(
        "Grad-CAM++", "choice", "a",
        "Grad-CAM++ (Chattopadhay ら, WACV 2018) は、正の勾配に 2 階・3 階微分から求めた画素ごとの係数をかけて重みにします。"
        "同じクラスの物体が複数あるとき、1 つに偏らず全部を覆いやすくなります。",
        choices={"a": "正の勾配に、2 階・3 階微分から求めた画素ごとの係数をかけて重みにする。同じクラスの物体が複数あっても覆いやすい",
                 "b": "勾配を使わず、特徴マップでマスクした入力のスコアで重みを決める",
                 "c": "重みを求めず、特徴マップの第 1 主成分を地図にする",
                 "d": "入力画像についての勾配をそのまま地図にする"},
        why_wrong={"b": "それは Score-CAM です。", "c": "それは Eigen-CAM です (クラスを区別しません)。",
                   "d": "それは Saliency (勾配マップ) です。"}),
    "q12": Question(
        "Score-CAM", "choice", "b",
        "Score-CAM (Wang ら, CVPR-W 2020) は、各チャンネルの特徴マップを入力の大きさに拡大・正規化してマスクにし、"
        "マスクした入力でのクラスのスコアの上がり方を重みにします。勾配は使いませんが、チャンネル数だけ順伝播が要るので遅くなります。",
        choices={"a": "勾配の空間平均を重みにする",
                 "b": "特徴マップを拡大・正規化したマスクを入力にかけ、そのときのスコアの上がり方を重みにする (勾配を使わない)",
                 "c": "学習時に GAP を入れておき、全結合の重みを使う",
                 "d": "正の勾配に画素ごとの係数をかける"},
        why_wrong={"a": "それは Grad-CAM です。", "c": "それは CAM です。", "d": "それは Grad-CAM++ です。"}),
    "q13": Question(
        "Guided Grad-CAM", "choice", "a",
        "Guided Grad-CAM は、Guided Backpropagation の入力解像度の勾配と、入力の大きさに拡大した Grad-CAM を画素ごとに掛けます。"
        "Grad-CAM のクラス識別性と、Guided Backprop の細かさを合わせる狙いです (Grad-CAM の原論文)。",
        choices={"a": "Guided Backpropagation の勾配と、入力サイズに拡大した Grad-CAM を画素ごとに掛ける",
                 "b": "Grad-CAM を 2 つの層で計算して足す",
                 "c": "入力画像と Grad-CAM を画素ごとに掛ける",
                 "d": "Guided Backpropagation と Grad-CAM を足して 2 で割る"},
        why_wrong={"b": "複数の層の地図を合わせる手法もありますが、Guided Grad-CAM ではありません。",
                   "c": "それは重ね合わせの表示に近いもので、Guided Backprop の勾配を使っていません。",
                   "d": "足すのではなく掛けます (両方が大きいところだけが残る)。"}),
    "q14": Question(
        "Sanity Checks", "choice", "a",
        "Adebayo ら「Sanity Checks for Saliency Maps」(NeurIPS 2018) は、モデルの重みを上の層から順にランダムにしても "
        "Guided Backprop (と、それを掛ける Guided Grad-CAM) の地図がほとんど変わらないことを示しました。"
        "入力の輪郭を写しているだけで、学習した判断を反映していないということです。勾配や Grad-CAM の地図は大きく変わりました。",
        choices={"a": "重みを上の層から順にランダムにすると、Grad-CAM の地図は大きく変わったが、Guided Backprop の地図はほとんど変わらなかった",
                 "b": "調べたすべての手法が合格した (重みをランダムにすると地図が大きく変わった)",
                 "c": "Grad-CAM の地図がほとんど変わらず、Guided Backprop の地図は大きく変わった",
                 "d": "重みをランダムにしても、どの手法の地図も変わらなかった"},
        why_wrong={"b": "すべてではありません。Guided Backprop と Guided Grad-CAM はほとんど変わりませんでした。",
                   "c": "逆です。変わらなかったのは Guided Backprop のほうです。",
                   "d": "勾配や Grad-CAM の地図は、重みをランダムにすると大きく変わりました。"}),
    "q15": Question(
        "Integrated Gradients のベースライン", "choice", "a",
        "IG_i(x) = (x_i − x'_i) ∫_0^1 ∂F(x' + α(x − x'))/∂x_i dα (Sundararajan ら, ICML 2017)。x' はベースライン "
        "(『情報がない』基準の入力: 黒画像、ぼかした画像、ノイズなど) で、x' から x までの直線に沿って勾配を積分します。",
        choices={"a": "ベースライン (黒画像など『情報がない』基準の入力)。x' から x までの直線に沿って勾配を積分する",
                 "b": "入力 x の勾配",
                 "c": "学習データの平均画像 (それ以外は使えない)",
                 "d": "モデルを間違えさせる敵対的サンプル"},
        why_wrong={"b": "x' は入力と同じ形の画像です。勾配は積分の中身のほうです。",
                   "c": "平均画像も使えますが、黒画像・ぼかし・ノイズなど選び方は自由で、『それ以外は使えない』わけではありません。",
                   "d": "ベースラインは予測の根拠がない基準点で、敵対的サンプルではありません。"}),
    "q16": Question(
        "Integrated Gradients の完全性", "number", 7.0,
        "完全性 (completeness): Σ_i IG_i(x) = F(x) − F(x')。7.5 − 0.5 = 7.0 です。"
        "このレッスンでは MNIST の CNN で、リーマン和で近似した IG がこの等式を満たすことを確かめました。",
        why_wrong={7.5: "F(x) そのものではなく、ベースラインとの差 F(x) − F(x') に分配されます。",
                   8.0: "足すのではなく、F(x) から F(x') を引きます。",
                   -7.0: "向きが逆です: F(x) − F(x')。"},
        hint="Σ_i IG_i(x) = F(x) − F(x') です。"),
    "q17": Question(
        "黒のベースラインと背景", "number", 0.0,
        "IG_i は (x_i − x'_i) を掛けるので、ベースラインと同じ値の画素 (MNIST の背景 0 と黒のベースライン 0) は、"
        "勾配がいくら大きくても IG がちょうど 0 になります。『黒い画素は重要になりえない』という、ベースラインの選び方の限界です。",
        why_wrong={},
        hint="IG_i の式の最初の因数 (x_i − x'_i) は、背景の画素ではいくつですか？"),
    "q18": Question(
        "局所的な解釈と大域的な解釈", "choice", "c",
        "局所的な解釈は 1 つの入力の予測を説明し、大域的な解釈はモデル全体の振る舞いを説明します。"
        "全データで平均した SHAP 値の絶対値はモデル全体での特徴量の重要度なので大域的です。"
        "1 枚の画像の Grad-CAM、LIME、SHAP はどれも局所的です。",
        choices={"a": "ある 1 枚の画像に対する LIME の説明",
                 "b": "ある 1 枚の画像の Grad-CAM",
                 "c": "全テストデータで平均した SHAP 値の絶対値から作る特徴量の重要度",
                 "d": "ある 1 人の融資審査の結果に対する SHAP の説明"},
        why_wrong={"a": "1 つの入力の近くで代理モデルを当てはめるので、局所的な解釈です。",
                   "b": "1 枚の画像の判断の根拠なので、局所的な解釈です。",
                   "d": "1 人の予測の説明なので、局所的な解釈です (SHAP 値を全データで集めると大域的になります)。"}),
    "q19": Question(
        "LIME", "choice", "a",
        "LIME (Ribeiro ら, KDD 2016) は、説明したい入力の周りで入力を摂動したサンプル (画像ならスーパーピクセルの ON/OFF) を作り、"
        "元の入力に近いサンプルほど大きな重みで、解釈しやすい線形モデルを当てはめます (局所的な代理モデル)。"
        "線形モデルの係数が、各スーパーピクセルの寄与です。",
        choices={"a": "入力の周りで摂動したサンプルに、近さで重みを付けて線形モデルを当てはめる (局所的な代理モデル)",
                 "b": "モデルの重みを直接読み取る",
                 "c": "全データで決定木を学習して、モデル全体をまねる",
                 "d": "ベースラインから入力までの勾配を積分する"},
        why_wrong={"b": "LIME はモデルの中身を見ません (モデルに依存しない方法)。入力と出力だけを使います。",
                   "c": "それは大域的な代理モデルです。LIME は 1 つの入力の近くだけをまねます。",
                   "d": "それは Integrated Gradients です。"}),
    "q20": Question(
        "SHAP", "choice", "b",
        "SHAP (Lundberg & Lee, NeurIPS 2017) は、特徴量を協力ゲームのプレイヤー、予測値を報酬とみなし、"
        "Shapley 値で予測を特徴量に分配します。φ_0 (基準の予測) + Σ_i φ_i = f(x) が成り立ちます (局所的な正確さ)。",
        choices={"a": "ランダムに選んだ特徴量の勾配の平均を重要度とする",
                 "b": "特徴量を協力ゲームのプレイヤーとみなし、予測値を Shapley 値で分配する。φ_0 + Σ_i φ_i = f(x) が成り立つ",
                 "c": "特徴量を 1 つずつ取り除いたときの精度の下がり方だけで決める",
                 "d": "最後の畳み込み層の特徴マップを勾配で重み付けする"},
        why_wrong={"a": "SHAP の中心は Shapley 値です。GradientExplainer は勾配を使いますが、近似の手段にすぎません。",
                   "c": "1 つずつ取り除くだけでは、特徴量の組み合わせ (相互作用) が考慮されません。Shapley 値はすべての組み合わせでの貢献を平均します。",
                   "d": "それは Grad-CAM です。"}),
    "q21": Question(
        "Shapley 値の計算", "number", 18.0,
        "3 人の並び順 6 通りで A の限界貢献を平均します: ABC 12, ACB 12, BAC 24−6=18, BCA 36−12=24, CAB 18−0=18, "
        "CBA 36−12=24 → 108/6 = 18。公式 φ_A = Σ_S |S|!(n−|S|−1)!/n! (v(S∪{A}) − v(S)) でも "
        "(2/6)·12 + (1/6)·18 + (1/6)·18 + (2/6)·24 = 18。B は 12、C は 6 で、合計 36 = v({A,B,C}) (効率性)。",
        why_wrong={12.0: "v({A}) = 12 (A が最初に来る並び順の貢献) だけです。すべての並び順で平均してください (または 36 を 3 等分していませんか？)。",
                   24.0: "A が最後に来る並び順の貢献だけです。6 通りすべての並び順で平均してください。"},
        hint="6 通りの並び順のそれぞれで、A が加わったときの増分 v(S∪{A}) − v(S) を求めて平均します。"),
    "q22": Question(
        "Shapley 値の性質", "choice", "d",
        "Shapley 値は効率性・対称性・ナルプレイヤー・加法性を満たす唯一の分け方です。"
        "『v({i}) 以上』は成り立つとは限りません: v({A}) = v({B}) = v({A,B}) = 10 なら φ_A = φ_B = 5 < 10 です。",
        choices={"a": "効率性: 全員の Shapley 値の和は v(全員) − v(∅)",
                 "b": "対称性: どの組に加わっても同じ貢献をする 2 人は同じ値",
                 "c": "ナルプレイヤー: どの組に加わっても何も増やさない人は 0",
                 "d": "単独性: 各人の Shapley 値は必ず単独で得られる値 v({i}) 以上"},
        why_wrong={"a": "効率性は Shapley 値の性質です (SHAP の φ_0 + Σφ_i = f(x) のもと)。",
                   "b": "対称性は Shapley 値の性質です。",
                   "c": "ナルプレイヤー (ダミー) は Shapley 値の性質です。"}),
}


def _normalise(q: Question, answer):
    if q.kind == "choice":
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
    if q.kind == "number":
        return bool(np.isclose(given, float(expected), rtol=1e-3, atol=1e-6))
    return given == expected


def check_answer(qid: str, answer) -> None:
    """Check the answer to question ``qid``; print 正解 and the worked explanation, or raise
    ``AssertionError`` saying why the answer is wrong."""
    if qid not in QUESTIONS:
        raise KeyError(f"unknown question {qid!r}; questions are {', '.join(QUESTIONS)}")
    q = QUESTIONS[qid]
    if answer is None or answer is Ellipsis:
        raise AssertionError(f"{qid} ({q.topic}): まだ答えていません。answer_{qid} に答えを入れてから、"
                             "このセルを実行してください。")
    given = _normalise(q, answer)
    if _matches(q, given, q.answer):
        print(f"{qid} ({q.topic}): 正解です！ 答え {_show(q.answer)}\n解説: {q.explanation}")
        return
    for wrong, why in q.why_wrong.items():
        value = _normalise(q, wrong) if q.kind != "choice" else wrong
        if _matches(q, given, value):
            raise AssertionError(f"{qid} ({q.topic}): {_show(answer)} は不正解です。{why}")
    raise AssertionError(f"{qid} ({q.topic}): {_show(answer)} は不正解です。{q.hint or 'もう一度考えてみましょう。'}")


def _show(value) -> str:
    return f"({value})" if isinstance(value, str) else repr(value)
