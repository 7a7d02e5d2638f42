"""Names, addresses and trace strings of the synthetic market, built vectorised.

Every string column is built from small lookup tables with ``np.strings``
operations on integer codes, never one Python f-string per row, and the trace
values (IPs, MACs, fingerprints, accounts, phones) come from bijective integer
mixes of an index, so they are unique by construction and can serve directly
as the categories of a ``pd.Categorical``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "REGIONS",
    "CATEGORIES",
    "account_strings",
    "address_strings",
    "agent_names",
    "buyer_names",
    "company_names",
    "email_strings",
    "fingerprint_strings",
    "id_strings",
    "ip_strings",
    "mac_strings",
    "name_variants",
    "person_names",
    "phone_strings",
]

#: (pinyin, hanzi) of the regions (prefecture-level cities).
REGIONS: tuple[tuple[str, str], ...] = (
    ("Nanjing", "南京"), ("Suzhou", "苏州"), ("Wuxi", "无锡"), ("Changzhou", "常州"), ("Nantong", "南通"),
    ("Yangzhou", "扬州"), ("Hangzhou", "杭州"), ("Ningbo", "宁波"), ("Wenzhou", "温州"), ("Shaoxing", "绍兴"),
    ("Hefei", "合肥"), ("Wuhu", "芜湖"), ("Jinan", "济南"), ("Qingdao", "青岛"), ("Yantai", "烟台"),
    ("Zhengzhou", "郑州"), ("Luoyang", "洛阳"), ("Wuhan", "武汉"), ("Yichang", "宜昌"), ("Changsha", "长沙"),
    ("Nanchang", "南昌"), ("Fuzhou", "福州"), ("Xiamen", "厦门"), ("Guangzhou", "广州"), ("Foshan", "佛山"),
    ("Chengdu", "成都"), ("Mianyang", "绵阳"), ("Chongqing", "重庆"), ("Xian", "西安"), ("Kunming", "昆明"),
    ("Guiyang", "贵阳"), ("Nanning", "南宁"), ("Shijiazhuang", "石家庄"), ("Taiyuan", "太原"), ("Lanzhou", "兰州"),
    ("Shenyang", "沈阳"), ("Dalian", "大连"), ("Changchun", "长春"), ("Harbin", "哈尔滨"), ("Tianjin", "天津"),
)

#: Work categories of construction procurement.
CATEGORIES: tuple[str, ...] = (
    "building", "municipal_road", "bridge", "water_conservancy", "landscaping", "decoration",
    "electromechanical", "rail_transit", "environmental", "power", "telecom", "port_waterway",
    "geotechnical", "heritage_restoration", "demolition", "smart_city",
)

# (hanzi, pinyin) syllables of company name cores.
_SYL = (
    ("华", "hua"), ("建", "jian"), ("宏", "hong"), ("盛", "sheng"), ("中", "zhong"), ("恒", "heng"),
    ("鑫", "xin"), ("达", "da"), ("远", "yuan"), ("泰", "tai"), ("通", "tong"), ("联", "lian"),
    ("兴", "xing"), ("隆", "long"), ("祥", "xiang"), ("瑞", "rui"), ("安", "an"), ("广", "guang"),
    ("金", "jin"), ("信", "xin"), ("永", "yong"), ("昌", "chang"), ("德", "de"), ("宝", "bao"),
    ("丰", "feng"), ("海", "hai"), ("天", "tian"), ("博", "bo"), ("诚", "cheng"), ("正", "zheng"),
    ("明", "ming"), ("嘉", "jia"), ("润", "run"), ("鼎", "ding"), ("荣", "rong"), ("志", "zhi"),
    ("宇", "yu"), ("凯", "kai"), ("腾", "teng"), ("峰", "feng"), ("城", "cheng"), ("东", "dong"),
    ("南", "nan"), ("北", "bei"), ("新", "xin"), ("科", "ke"), ("汇", "hui"), ("力", "li"),
)
_INDUSTRY = (
    ("建设工程", "Construction Engineering"), ("建筑工程", "Building Engineering"),
    ("市政工程", "Municipal Engineering"), ("路桥工程", "Road & Bridge Engineering"),
    ("建工集团", "Construction Group"), ("装饰工程", "Decoration Engineering"),
    ("水利工程", "Water Conservancy Engineering"), ("园林绿化工程", "Landscaping Engineering"),
    ("机电安装工程", "Electromechanical Installation"), ("土木工程", "Civil Engineering"),
    ("建设", "Construction"), ("工程", "Engineering"),
)
_FORM = (("有限公司", "Co., Ltd."), ("有限责任公司", "Co., Ltd."), ("股份有限公司", "Corp., Ltd."),
         ("集团有限公司", "Group Co., Ltd."))
_FORM_P = (0.6, 0.2, 0.12, 0.08)
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红文斌辉鹏宇浩凯鑫波宁琳雪峰晨阳林俊"
_DISTRICTS = ("东城区", "西城区", "新区", "高新区", "经开区", "江北区", "城南区", "滨湖区", "开发区", "吴中区")
_DEPTS = (
    "住房和城乡建设局", "交通运输局", "水务局", "教育局", "卫生健康委员会", "城市管理局", "人民医院",
    "城市建设投资集团有限公司", "园林绿化局", "公路管理处", "自然资源和规划局", "文化广电和旅游局",
)
_AGENT_FORMS = ("招标代理有限公司", "工程咨询有限公司", "建设项目管理有限公司", "造价咨询有限公司")
_ROADS = ("中山路", "人民路", "解放路", "建设路", "长江路", "黄河路", "和平路", "胜利路", "新华路", "文化路",
          "幸福路", "友谊路", "科技路", "创业大道", "滨江大道", "世纪大道")
_MAIL = ("163.com", "126.com", "qq.com", "sina.com", "foxmail.com")
_IP_FIRST = np.array([36, 39, 42, 49, 58, 59, 60, 61, 101, 106, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119,
                      120, 121, 122, 123, 124, 125, 171, 175, 180, 182, 183, 202, 210, 211, 218, 219, 220, 221, 222])
_HEX2 = np.array([f"{i:02x}" for i in range(256)])
# Visually or phonetically similar characters: the typos of manual registry entry.
_TYPOS = {"建": "健", "华": "化", "工": "功", "程": "成", "宏": "弘", "盛": "胜", "鑫": "新", "达": "大",
          "泰": "太", "兴": "星", "祥": "样", "瑞": "端", "安": "按", "金": "全", "永": "水", "昌": "唱",
          "德": "得", "丰": "峰", "海": "每", "诚": "成", "正": "政", "明": "名", "嘉": "加", "润": "闰"}


def _arr(values: tuple) -> np.ndarray:
    return np.array(values, dtype=object).astype(str)


def _num(a: np.ndarray) -> np.ndarray:
    """Non-negative integers as text, as narrow as needed (``astype(str)`` gives 21 characters)."""
    a = np.asarray(a)
    width = len(str(int(a.max()))) if a.size else 1
    return a.astype(f"U{width}")


def _text(part: np.ndarray | str) -> np.ndarray:
    arr = np.asarray(part)
    if arr.dtype.kind == "U":
        return arr
    return _num(arr) if arr.dtype.kind in "iu" else arr.astype(str)


def _cat(*parts: np.ndarray | str) -> np.ndarray:
    """Elementwise concatenation of string arrays and scalars."""
    out = _text(parts[0])
    for p in parts[1:]:
        out = np.strings.add(out, _text(p))
    return out


def _mix(i: np.ndarray, bits: int, salt: int) -> np.ndarray:
    """A bijection of ``[0, 2**bits)``: distinct inputs give distinct, random-looking outputs."""
    mask = np.uint64((1 << bits) - 1)
    x = (np.asarray(i, dtype=np.uint64) + np.uint64(salt)) & mask
    for mult in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9):
        x = (x * np.uint64(mult | 1)) & mask
        x ^= x >> np.uint64(max(bits // 2, 1))
    return x


def id_strings(prefix: str, n: int, width: int | None = None) -> np.ndarray:
    """``prefix`` + zero-padded numbers; equal width so string order is numeric order."""
    width = width or max(len(str(max(n - 1, 0))), 4)
    if n == 0:
        return np.zeros(0, dtype=f"U{len(prefix) + width}")
    return _cat(prefix, np.strings.zfill(_num(np.arange(n)), width))


def ip_strings(i: np.ndarray) -> np.ndarray:
    """Unique public-looking IPv4 addresses for indices ``i`` (< 2**24)."""
    i = np.asarray(i, dtype=np.int64)
    if len(i) and i.max() >= 1 << 24:
        raise ValueError("ip_strings supports indices below 2**24")
    rest = _mix(i, 24, 7).astype(np.int64)  # a bijection: the last three octets alone are unique
    first = _IP_FIRST[(i * 7 + rest) % len(_IP_FIRST)]
    return _cat(_num(first), ".", _num((rest >> 16)), ".", _num(((rest >> 8) & 255)), ".",
                _num((rest & 255)))


def mac_strings(i: np.ndarray) -> np.ndarray:
    """Unique MAC addresses for indices ``i``."""
    x = _mix(i, 48, 11).astype(np.int64)
    parts = [_HEX2[(x >> (8 * k)) & 255] for k in range(5, -1, -1)]
    out = parts[0]
    for p in parts[1:]:
        out = _cat(out, ":", p)
    return out


def fingerprint_strings(i: np.ndarray) -> np.ndarray:
    """Unique 16-hex-digit document author hashes for indices ``i``."""
    x = _mix(i, 64, 13)
    parts = [_HEX2[((x >> np.uint64(8 * k)) & np.uint64(255)).astype(np.int64)] for k in range(8)]
    return _cat(*parts)


def account_strings(i: np.ndarray) -> np.ndarray:
    """Unique 19-digit bank accounts for indices ``i`` (< 2**49)."""
    body = _mix(i, 49, 17).astype(np.int64)  # < 2**49 < 10**15
    return _cat("6222", np.strings.zfill(_num(body), 15))


def phone_strings(i: np.ndarray) -> np.ndarray:
    """Unique mobile numbers (13x/15x/18x) for indices ``i`` (< 2**26)."""
    i = np.asarray(i, dtype=np.int64)
    if len(i) and i.max() >= 1 << 26:
        raise ValueError("phone_strings supports indices below 2**26")
    prefixes = np.array(["138", "139", "137", "150", "151", "158", "186", "188", "189"])
    body = _mix(i, 26, 19).astype(np.int64)  # a bijection below 2**26 < 10**8: bodies are unique
    return _cat(prefixes[(i * 7 + body) % len(prefixes)], np.strings.zfill(_num(body), 8))


def email_strings(rng: np.random.Generator, handles: np.ndarray, i: np.ndarray) -> np.ndarray:
    """``handle + index @ mail domain``: unique because the index is."""
    return _cat(handles, _num(np.asarray(i)), "@", _arr(_MAIL)[rng.integers(len(_MAIL), size=len(i))])


def address_strings(rng: np.random.Generator, region: np.ndarray) -> np.ndarray:
    """Street addresses in the regions' cities (honest collisions are possible: shared office blocks)."""
    n = len(region)
    # (city, district, road) prefixes and number parts are small tables; rows only index them.
    city = _arr(tuple(h for _, h in REGIONS))
    n_d, n_r = len(_DISTRICTS), len(_ROADS)
    prefix = _cat(np.repeat(city, n_d * n_r), "市", np.tile(np.repeat(_arr(_DISTRICTS), n_r), len(city)),
                  np.tile(_arr(_ROADS), len(city) * n_d))
    number = _cat(_num(np.arange(1000)), "号")
    room = _cat(np.repeat(_num(np.arange(1, 30)), 23), "栋", np.tile(_num(np.arange(1, 24)), 29), "01室")
    p = (np.asarray(region) * n_d + rng.integers(n_d, size=n)) * n_r + rng.integers(n_r, size=n)
    return _cat(prefix[p], number[rng.integers(1, 1000, size=n)], room[rng.integers(len(room), size=n)])


def person_names(rng: np.random.Generator, n: int) -> np.ndarray:
    """Chinese personal names: surname + one or two given-name characters."""
    sur = np.array(list(_SURNAMES))
    given = np.array(list(_GIVEN))
    one = _cat(sur[rng.integers(len(sur), size=n)], given[rng.integers(len(given), size=n)])
    two = _cat(one, given[rng.integers(len(given), size=n)])
    return np.where(rng.random(n) < 0.6, two, one)


def company_names(rng: np.random.Generator, region: np.ndarray, english_share: float = 0.1
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Company names like 华建建设工程有限公司 or Huajian Construction Engineering Co., Ltd.

    Returns the names and a pinyin handle (for e-mail addresses).
    """
    n = len(region)
    s1 = rng.integers(len(_SYL), size=n)
    s2 = rng.integers(len(_SYL), size=n)
    ind = rng.integers(len(_INDUSTRY), size=n)
    form = rng.choice(len(_FORM), size=n, p=_FORM_P)
    han = _arr(tuple(h for h, _ in _SYL))
    pin = _arr(tuple(p for _, p in _SYL))
    pin_cap = np.strings.capitalize(pin)
    city_han = _arr(tuple(h for _, h in REGIONS))[region]
    city_pin = _arr(tuple(p for p, _ in REGIONS))[region]
    with_city = rng.random(n) < 0.35
    bracket = rng.random(n) < 0.1  # e.g. 华建建设工程(南京)有限公司
    core = _cat(han[s1], han[s2])
    industry = _arr(tuple(h for h, _ in _INDUSTRY))[ind]
    forms = _arr(tuple(h for h, _ in _FORM))[form]
    chinese = np.where(
        bracket, _cat(core, industry, "(", city_han, ")", forms),
        np.where(with_city, _cat(city_han, core, industry, forms), _cat(core, industry, forms)),
    )
    english = _cat(np.where(with_city, _cat(city_pin, " "), ""), pin_cap[s1], pin[s2], " ",
                   _arr(tuple(e for _, e in _INDUSTRY))[ind], " ", _arr(tuple(e for _, e in _FORM))[form])
    names = np.where(rng.random(n) < english_share, english, chinese)
    return names, _cat(pin[s1], pin[s2])


def buyer_names(rng: np.random.Generator, region: np.ndarray) -> np.ndarray:
    """Public purchasing units: city + district + department."""
    n = len(region)
    city = _arr(tuple(h for _, h in REGIONS))[region]
    district = np.where(rng.random(n) < 0.5, "", _arr(_DISTRICTS)[rng.integers(len(_DISTRICTS), size=n)])
    return _cat(city, "市", district, _arr(_DEPTS)[rng.integers(len(_DEPTS), size=n)])


def agent_names(rng: np.random.Generator, region: np.ndarray) -> np.ndarray:
    """Procurement agencies: city + core + agency form."""
    n = len(region)
    han = _arr(tuple(h for h, _ in _SYL))
    city = _arr(tuple(h for _, h in REGIONS))[region]
    return _cat(city, han[rng.integers(len(han), size=n)], han[rng.integers(len(han), size=n)],
                _arr(_AGENT_FORMS)[rng.integers(len(_AGENT_FORMS), size=n)])


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else ("\u3000" if c == " " else c) for c in text)


def _variant(name: str, kind: int, pos: float) -> str:
    """One registry variant of ``name``; ``kind`` picks the edit, ``pos`` where it happens."""
    if kind == 0:  # legal form changed
        for a, b in (("股份有限公司", "有限公司"), ("有限责任公司", "有限公司"), ("有限公司", "有限责任公司"),
                     ("Corp., Ltd.", "Co., Ltd."), ("Group Co., Ltd.", "Group Company Limited"),
                     ("Co., Ltd.", "Company Limited")):
            if name.endswith(a):
                return name[: -len(a)] + b
    if kind == 1:  # full-width characters (ASCII letters, brackets, spaces)
        if any("!" <= c <= "~" for c in name):
            return _full_width(name)
        return name[:2] + "（" + name[2:4] + "）" + name[4:]
    if kind == 2:  # an extra space: doubled between words, or inserted between characters
        gaps = [j for j, c in enumerate(name) if c == " "]
        k = gaps[int(pos * len(gaps))] if gaps else 1 + int(pos * (len(name) - 1))
        return name[:k] + " " + name[k:]
    # a typo: a similar character, or two swapped letters in an English name
    chars = list(name)
    spots = [j for j, c in enumerate(chars) if c in _TYPOS]
    if spots:
        j = spots[int(pos * len(spots))]
        chars[j] = _TYPOS[chars[j]]
        return "".join(chars)
    letters = [j for j in range(len(chars) - 1) if chars[j].isalpha() and chars[j + 1].isalpha()]
    j = letters[int(pos * len(letters))] if letters else 0
    chars[j], chars[j + 1] = chars[j + 1], chars[j]
    return "".join(chars)


def name_variants(rng: np.random.Generator, names: np.ndarray) -> np.ndarray:
    """Variant spellings of ``names`` as a second registration would show them.

    One edit per name: legal-form suffix changed, full-width characters, an
    extra space, or a typo. Loops over the (few) duplicated parties only.
    """
    kinds = rng.integers(4, size=len(names))
    pos = rng.random(len(names))
    out = [_variant(str(nm), int(k), float(p)) for nm, k, p in zip(names, kinds, pos)]
    # An edit that changed nothing (no suffix matched) falls back to an extra space.
    out = [v if v != str(nm) else _variant(str(nm), 2, float(p)) for v, nm, p in zip(out, names, pos)]
    return np.array(out, dtype=object).astype(str)
