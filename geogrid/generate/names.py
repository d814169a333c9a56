"""Chinese names for the demo city: districts, communities, villages, police units and people.

Hefei's real districts and counties are used for flavour; community, village and person names are
made up from common characters, so any match with a real place or person is a coincidence.
"""
from __future__ import annotations

import numpy as np

#: Urban districts of Hefei by compass sector (degrees, east = 0, counter-clockwise), roughly as on
#: the real map: 瑶海 east, 庐阳 north and the old centre, 蜀山 west, 包河 south.
URBAN_DISTRICTS: tuple[tuple[str, float, float], ...] = (
    ("瑶海区", -30.0, 50.0),
    ("庐阳区", 50.0, 140.0),
    ("蜀山区", 140.0, 250.0),
    ("包河区", 250.0, 330.0),
)
#: Rural counties (and 包河区's rural south) around the core, same convention.
RURAL_DISTRICTS: tuple[tuple[str, float, float], ...] = (
    ("肥东县", -30.0, 40.0),
    ("长丰县", 40.0, 150.0),
    ("肥西县", 150.0, 250.0),
    ("包河区", 250.0, 330.0),
)

_URBAN_ROOTS = (
    "杏花 琥珀 三孝口 稻香 海棠 双岗 亳州路 芜湖路 望湖 南七 金寨路 明光路 大通路 胜利 长江 淮河 和平 "
    "曙光 五里墩 西园 荷叶地 安庆路 桐城路 逍遥津 四牌楼 七里塘 方庙 红光 铜陵路 龙岗 常青 花园 井岗 "
    "南岗 银河 滨湖 万年埠 卫岗 芙蓉 翡翠 天鹅湖 青阳 潜山 黄山路 清溪 合作化 长淮 东七 南门 北门 "
    "宿州路 寿春 蒙城路 阜阳路 绩溪路 马鞍山路 包公 庐州"
).split()
_RURAL_ROOTS = (
    "大杨 林店 磨店 大兴 烟墩 义城 骆岗 小庙 三十岗 桃花 紫蓬 上派 三河 严店 高刘 官亭 撮镇 店埠 "
    "长临河 众兴 水湖 岗集 双墩 吴山 杨庙 庄墓 造甲 罗集 朱巷 陶楼 下塘 北城 青龙 梅冲 白龙 花岗 "
    "柿树 丰乐 铭传 山南 元疃 牌坊 八斗 包集 马郢 陈湾 王岗 李圩 周集 刘河 孙店 徐庙 黄墩 吴湾"
).split()
_COMMUNITY_SUFFIXES = ("", "东", "西", "南", "北", "新村", "花园", "苑")
_VILLAGE_SUFFIXES = ("", "岗", "圩", "集", "店", "湾", "郢", "庄")

_SURNAMES = (
    "王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 何 高 林 罗 郑 梁 谢 宋 唐 许 韩 冯 邓 曹 "
    "彭 曾 肖 田 董 袁 潘 于 蒋 蔡 余 杜 叶 程 苏 魏 吕 丁 任 沈 姚 卢 姜 崔 钟 谭 陆 汪 范 金"
).split()
_GIVEN = (
    "伟 芳 娜 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀 霞 平 刚 桂 英 华 玉 萍 红 鹏 辉 建 "
    "国 文 斌 宇 浩 凯 健 俊 帆 帅 旭 宁 龙 林 欣 晨 雪 琳 晶 阳 佳 博 鑫 思 雨 婷 峰 海 波"
).split()


def place_names(rng: np.random.Generator, n: int, rural: bool) -> list[str]:
    """``n`` distinct community (``…社区``) or village (``…村``) names."""
    roots, suffixes = (_RURAL_ROOTS, _VILLAGE_SUFFIXES) if rural else (_URBAN_ROOTS, _COMMUNITY_SUFFIXES)
    pool = [r + s for r in roots for s in suffixes]
    picks = rng.choice(len(pool), size=n, replace=n > len(pool))
    end = "村" if rural else "社区"
    return [pool[i] + end for i in picks]


def person_names(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` Chinese personal names; common surnames are drawn more often (Zipf-like), as in life."""
    weights = 1.0 / np.arange(1, len(_SURNAMES) + 1) ** 0.8
    surname = rng.choice(len(_SURNAMES), size=n, p=weights / weights.sum())
    first = rng.integers(0, len(_GIVEN), size=n)
    second = rng.integers(0, len(_GIVEN), size=n)
    two_char = rng.random(n) < 0.7  # most given names today have two characters
    sur = np.asarray(_SURNAMES, dtype=object)[surname]
    giv = np.asarray(_GIVEN, dtype=object)
    return sur + giv[first] + np.where(two_char, giv[second], "")


def district_of(angle_deg: np.ndarray, rural: np.ndarray) -> np.ndarray:
    """District name for each (angle from the centre, rural flag) pair."""
    a = np.mod(angle_deg + 30.0, 360.0) - 30.0  # to [-30, 330), the range the tables cover
    out = np.empty(a.size, dtype=object)
    for table, mask in ((URBAN_DISTRICTS, ~rural), (RURAL_DISTRICTS, rural)):
        for name, lo, hi in table:
            out[mask & (a >= lo) & (a < hi)] = name
    return out
