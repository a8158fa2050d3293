/** Vocabulary of the synthetic recommender world. */
export const ITEM_TYPES = ['movie', 'product', 'article', 'video'] as const;
export const TYPE_WEIGHTS = [25, 35, 20, 20];

export const CATEGORIES: Record<(typeof ITEM_TYPES)[number], readonly string[]> = {
  movie: ['action', 'comedy', 'drama', 'horror', 'sci_fi', 'romance', 'documentary', 'animation'],
  product: ['electronics', 'books', 'home', 'fashion', 'sports', 'beauty', 'toys', 'grocery'],
  article: ['technology', 'science', 'politics', 'business', 'health', 'travel', 'food', 'culture'],
  video: ['music', 'gaming', 'education', 'news', 'highlights', 'cooking', 'vlog', 'sketches'],
};

/** All categories with their type, in a fixed order (index = category id). */
export const ALL_CATEGORIES: readonly { type: (typeof ITEM_TYPES)[number]; name: string }[] =
  ITEM_TYPES.flatMap((type) => CATEGORIES[type].map((name) => ({ type, name })));

export const TAGS = [
  'new',
  'trending',
  'classic',
  'award_winning',
  'family',
  'premium',
  'indie',
  'bestseller',
  'short',
  'long_read',
  'hd',
  '4k',
  'limited',
  'sale',
  'eco',
  'local',
  'international',
  'beginner',
  'expert',
  'weekend',
];

export const WORDS = [
  'silent',
  'golden',
  'river',
  'night',
  'city',
  'garden',
  'storm',
  'light',
  'echo',
  'journey',
  'secret',
  'winter',
  'summer',
  'ocean',
  'machine',
  'dream',
  'signal',
  'shadow',
  'harbor',
  'forest',
  'engine',
  'paper',
  'crystal',
  'orbit',
  'velvet',
  'iron',
  'wild',
  'quiet',
  'electric',
  'hidden',
  'lost',
  'bright',
  'modern',
  'ancient',
  'simple',
];

export const FIRST_NAMES = [
  'Ana',
  'Ben',
  'Chen',
  'Dara',
  'Eli',
  'Fatima',
  'Goran',
  'Hana',
  'Ivan',
  'Jia',
  'Kofi',
  'Lena',
  'Mateo',
  'Nora',
  'Omar',
  'Priya',
  'Quinn',
  'Rosa',
  'Sven',
  'Tariq',
  'Uma',
  'Viktor',
  'Wei',
  'Ximena',
  'Yusuf',
  'Zoe',
];
export const LAST_NAMES = [
  'Silva',
  'Kim',
  'Müller',
  'Okafor',
  'Novak',
  'Tanaka',
  'García',
  'Haddad',
  'Ivanova',
  'Jensen',
  'Khan',
  'Li',
  'Moreau',
  'Nguyen',
  'Olsen',
  'Patel',
  'Rossi',
  'Schmidt',
  'Torres',
  'Wang',
];

export const COUNTRIES = ['US', 'DE', 'CN', 'BR', 'IN', 'JP', 'FR', 'GB', 'NG', 'MX'];
export const GENDERS = ['female', 'male', 'non_binary', null] as const;
export const GENDER_WEIGHTS = [46, 46, 3, 5];
export const USER_STATUSES = ['active', 'inactive', 'banned'] as const;
export const USER_STATUS_WEIGHTS = [90, 8, 2];
export const ITEM_STATUSES = ['active', 'inactive', 'deleted'] as const;
export const ITEM_STATUS_WEIGHTS = [94, 5, 1];

export const ACTIONS = ['view', 'click', 'like', 'dislike', 'buy', 'share', 'rating'] as const;
export const ACTION_WEIGHTS = [55, 24, 7, 2, 3, 3, 6];
export const DEVICES = ['mobile', 'desktop', 'tablet', 'tv'] as const;
export const DEVICE_WEIGHTS = [55, 30, 10, 5];
export const SOURCES = ['home', 'search', 'recommendation', 'related', 'notification'];
/** Activity by UTC hour: low at night, a lunch bump, an evening peak. */
export const HOUR_WEIGHTS = [3, 2, 1, 1, 1, 2, 4, 6, 7, 7, 7, 8, 9, 8, 7, 7, 8, 9, 11, 13, 14, 13, 9, 5];

export const STRATEGIES = ['generative', 'collaborative', 'content_based', 'popular', 'hybrid'] as const;
export const STRATEGY_WEIGHTS = [50, 15, 10, 10, 15];
export const EMBEDDING_DIM = 256;
export const MODEL_VERSION = 'seed-emb-v1';
